/**
 * RFC 9728 Protected Resource Metadata for `/mcp`: airlock is an OAuth 2.1 resource server
 * whose authorization servers are the configured token issuers (the local issuer and any
 * OIDC issuers), taking bearer tokens in the Authorization header only.
 */
import type { AirlockConfig } from '../config/schema.ts';
import { localIssuerUrl } from '../identity/local-issuer.ts';

export const MCP_PATH = '/mcp';
export const METADATA_PATH = `/.well-known/oauth-protected-resource${MCP_PATH}`;

export function resourceUrl(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}${MCP_PATH}`;
}

export function metadataUrl(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}${METADATA_PATH}`;
}

export function protectedResourceMetadata(config: AirlockConfig, publicUrl: string, gatewayId: string): Record<string, unknown> {
  return {
    resource: resourceUrl(publicUrl),
    authorization_servers: config.identity.issuers.map((i) => (i.type === 'local' ? localIssuerUrl(gatewayId) : i.issuer)),
    bearer_methods_supported: ['header'],
    resource_name: 'airlock',
  };
}
