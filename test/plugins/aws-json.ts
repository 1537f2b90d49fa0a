/**
 * Shared set-up of the conformance adapters for the AWS JSON-protocol plugins (DynamoDB,
 * SSM): a real moto behind a watching relay, and a gateway whose AWS endpoints point at it.
 */
import { AirlockError, type ErrorCode } from '../../core/errors.ts';
import { toAwsJsonError } from '../../core/aws/errors.ts';
import { startMoto, type Moto } from '../harness/moto.ts';
import { startTestGateway, type TestGateway, ownAwsIdentityEnv } from '../harness/gateway.ts';
import { UpstreamWatch, watchingRelay } from './conformance.ts';

export const REGION = 'us-east-1';
export const AGENT = 'conformance-bot';

export interface AwsBed {
  moto: Moto;
  gw: TestGateway;
  watch: UpstreamWatch;
  agentToken: string;
  close(): Promise<void>;
}

export async function startAwsBed(service: 'dynamodb' | 'ssm', resources: Record<string, unknown>, prepare: (moto: Moto) => Promise<void>): Promise<AwsBed> {
  const moto = await startMoto();
  const watch = new UpstreamWatch();
  let relay: Awaited<ReturnType<typeof watchingRelay>> | undefined;
  try {
    await prepare(moto);
    relay = await watchingRelay({ host: '127.0.0.1', port: moto.port }, watch);
    const keys = moto.adminKeys();
    const gw = await startTestGateway({
      env: ownAwsIdentityEnv(keys),
      config: {
        aws: { region: REGION, endpoints: { [service]: `http://127.0.0.1:${relay.port}`, sts: moto.endpoint } },
        resources,
        policies: [{ agents: [`local:${AGENT}`], resources: Object.keys(resources), access: ['read'], maxTtl: '15m' }],
      },
    });
    const r = relay;
    return { moto, gw, watch, agentToken: await gw.tokenFor(AGENT), close: async () => (await gw.close(), await r.close(), await moto.stop()) };
  } catch (e) {
    await relay?.close();
    await moto.stop();
    throw e;
  }
}

export const awsWireError = (code: ErrorCode): string => {
  const m = toAwsJsonError(new AirlockError(code, 'x'));
  return `${m.status} ${m.type}`;
};

/** What an SDK call's refusal looks like to the client (the claimed id masked). */
export function sdkRefusal(e: unknown, id: string): string {
  const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  return `${err.$metadata?.httpStatusCode} ${err.name} ${String(err.message).replaceAll(id, '<id>')}`;
}
