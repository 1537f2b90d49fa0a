/**
 * The EKS front: one Hono app mounted at /eks. Each request goes through named stages:
 *
 *   route → authenticate (bearer grant) → inspect (attributes, impersonation, scope)
 *   → admit (session for streams; request record spooled) → forward (HTTP or WebSocket,
 *   EKS token) → the answer recorded, durable before the client sees it
 *
 * and every refusal is a Kubernetes `Status` plus an audit record (refusals.ts).
 */
import { Hono, type Context } from 'hono';
import type { PluginContext } from '../../core/plugin.ts';
import type { EksResource, EksScope } from './config.ts';
import { admit, failed, forwardHttp, forwardWebSocket, type Upstreams } from './forward.ts';
import { authenticate, inspect, route } from './inspect.ts';

/** The front over `upstreams` (forward.ts `clusterUpstreams`; their owner closes them). */
export function eksApp(ctx: PluginContext<EksResource, EksScope>, upstreams: Upstreams): Hono {

  const handle = async (c: Context): Promise<Response> => {
    const routed = route(ctx, c);
    if (routed instanceof Response) return routed;
    const authenticated = await authenticate(ctx, routed);
    if (authenticated instanceof Response) return authenticated;
    const inspected = await inspect(ctx, authenticated.call, authenticated.grant);
    if (inspected instanceof Response) return inspected;
    const admitted = await admit(ctx, inspected);
    if (admitted instanceof Response) return admitted;
    try {
      return await (admitted.websocket ? forwardWebSocket(ctx, upstreams, admitted) : forwardHttp(ctx, upstreams, admitted));
    } catch (e) {
      return failed(admitted, e);
    }
  };

  const app = new Hono();
  app.all('/*', handle);
  return app;
}
