/**
 * Requests per agent in a sliding minute at `/mcp`. An agent over its budget gets 429 with
 * Retry-After; the budget is per replica (a shared store would make it global, at the cost
 * of a round trip per request).
 */
export class AgentRateLimit {
  private readonly hits = new Map<string, number[]>();

  constructor(
    private readonly perMinute: number,
    private readonly windowMs = 60_000,
  ) {}

  /** Count a request; false when the agent is over its budget (the request is not counted). */
  take(agent: string): boolean {
    const cutoff = Date.now() - this.windowMs;
    const list = (this.hits.get(agent) ?? []).filter((t) => t > cutoff);
    if (list.length >= this.perMinute) {
      this.hits.set(agent, list);
      return false;
    }
    list.push(Date.now());
    this.hits.set(agent, list);
    if (this.hits.size > 10_000) this.sweep(cutoff);
    return true;
  }

  private sweep(cutoff: number): void {
    for (const [agent, list] of this.hits) if (!list.some((t) => t > cutoff)) this.hits.delete(agent);
  }
}
