/** One request through the EKS front, as each stage hands it to the next. */
import type { Context } from 'hono';
import type { AuditExchange, Grant, Session } from '../../core/plugin.ts';
import type { Attrs } from './attributes.ts';
import type { EksResource, EksScope } from './config.ts';
import type { RequestInfo } from './request-info.ts';

/** Routed: which resource name (configured or not: that is told only to its grant), which Kubernetes path. */
export interface RoutedCall extends Omit<EksCall, 'resource'> {
  readonly resource: EksResource | undefined;
}

/** Authenticated: the resource exists and the grant is for it. */
export interface EksCall {
  readonly c: Context;
  readonly started: number;
  readonly resourceName: string;
  readonly resource: EksResource;
  readonly k8sPath: string;
  readonly rawQuery: string;
  readonly source: string | undefined;
}

/** Inspected: who (the grant) and what (the request attributes), allowed by the scope. */
export interface InspectedCall extends EksCall {
  readonly grant: Grant<EksScope>;
  readonly info: RequestInfo;
  readonly verb: string;
  readonly attrs: Attrs;
  readonly query: URLSearchParams;
  readonly websocket: boolean;
  /** Anything that can stay open is a session, so expiry and revocation can end it. */
  readonly streaming: boolean;
}

/** Admitted: recorded (spooled), with its session when it streams. */
export interface AdmittedCall extends InspectedCall {
  readonly exchange: AuditExchange;
  readonly session: Session<EksScope> | undefined;
  /** Aborted when the client goes away or the core cuts the session. */
  readonly upstreamAbort: AbortController;
}
