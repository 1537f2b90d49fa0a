/** The plugin conformance suite against the SSM plugin: AWS SDK v3 against a real moto. */
import { DescribeInstanceInformationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { runPluginConformance } from './conformance.ts';
import { awsWireError, REGION, sdkRefusal, startAwsBed } from './aws-json.ts';

runPluginConformance({
  type: 'ssm',
  skip: { 'revoke closes a live session': 'SSM Run Command requests are stateless (StartSession is not served yet), so there is no live session to cut' },
  async start() {
    const bed = await startAwsBed(
      'ssm',
      { fleet: { type: 'ssm', region: REGION, instances: ['i-0123456789abcdef0', 'i-0123456789abcdef1'], access: { read: { documents: ['AWS-RunShellScript'] } } } },
      async () => {},
    );
    const client = (id: string, secret: string, endpoint: string) => new SSMClient({ endpoint, region: REGION, credentials: { accessKeyId: id, secretAccessKey: secret }, maxAttempts: 1 });
    const endpoint = `${bed.gw.url}/ssm`;
    return {
      gw: bed.gw,
      agentToken: bed.agentToken,
      watch: bed.watch,
      grantRequest: { resource: 'fleet', access: 'read', ttl: '5m', task: 'conformance' },
      widenedScope: { instances: ['i-0123456789abcdef0', 'i-0fffffffffffffff0'] },
      async refusalFor(id, secret) {
        const c = client(id, secret, endpoint);
        try {
          await c.send(new DescribeInstanceInformationCommand({}));
          return 'accepted';
        } catch (e) {
          return sdkRefusal(e, id);
        } finally {
          c.destroy();
        }
      },
      async prepareRequest(g, marker) {
        const c = client(g.id, g.secret, String(g.connect['endpoint']));
        const send = new SendCommandCommand({ DocumentName: 'AWS-RunShellScript', InstanceIds: ['i-0123456789abcdef0'], Parameters: { commands: [`echo ${marker}`] } });
        return { run: async () => void (await c.send(send)), done: async () => c.destroy() };
      },
      isRequestRecord: (r, g, marker) => r.type === 'ssm.command' && r.grant === g.id && JSON.stringify(r.data?.['commands']).includes(marker),
      wireError: awsWireError,
      internalWireError: '500 InternalServerError',
      close: () => bed.close(),
    };
  },
});
