/**
 * Core's public surface for plugins and sinks: the extension-point types, typed errors,
 * durations, and the shared AWS JSON-protocol front. A plugin imports from here (and
 * nothing else under core/), so core can reorganise its insides freely.
 */
export * from './plugin.ts';
export * from './errors.ts';
export { parseDuration, formatDuration } from './config/duration.ts';
export { createJsonFront, type AuthorizeInput, type JsonDecision, type JsonFront, type JsonFrontSpec } from './aws/json-front.ts';
export { createJsonCall, type JsonCaller, type JsonCallResult } from './aws/json-call.ts';
export { AwsWireError } from './aws/errors.ts';
export { partitionOf } from './aws/endpoints.ts';
export { awsRegionSchema, roleArnSchema, accountIdSchema, narrowList, awsConnectInfo } from './aws/plugin-kit.ts';
export { listenAddress } from './config/schema.ts';
export { parseListen, formatHostPort } from './gateway/listen.ts';
export { awsCallToolResult, jsonToolResult } from './mcp/tool-kit.ts';
