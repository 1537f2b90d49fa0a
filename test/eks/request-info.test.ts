/**
 * Request attributes match kube-apiserver's RequestInfoFactory on the paths kubectl uses,
 * and ambiguous paths are refused rather than guessed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { queryBool, requestInfo } from '../../plugins/eks/request-info.ts';

const info = (method: string, url: string) => {
  const u = new URL(url, 'https://x');
  const r = requestInfo(method, u.pathname, u.searchParams);
  return { res: r.isResourceRequest, verb: r.verb, group: r.apiGroup, version: r.apiVersion, ns: r.namespace, resource: r.resource, sub: r.subresource, name: r.name };
};
const R = (verb: string, group: string, version: string, ns: string, resource: string, sub: string, name: string) => ({ res: true, verb, group, version, ns, resource, sub, name });

test('resource requests: verb, group, version, namespace, resource, subresource, name', () => {
  const cases: Array<[string, string, ReturnType<typeof R>]> = [
    ['GET', '/api/v1/namespaces', R('list', '', 'v1', '', 'namespaces', '', '')],
    ['GET', '/api/v1/namespaces/default', R('get', '', 'v1', 'default', 'namespaces', '', 'default')],
    ['GET', '/api/v1/namespaces/default/status', R('get', '', 'v1', 'default', 'namespaces', 'status', 'default')],
    ['GET', '/api/v1/namespaces/default/pods', R('list', '', 'v1', 'default', 'pods', '', '')],
    ['GET', '/api/v1/namespaces/default/pods?watch=1', R('watch', '', 'v1', 'default', 'pods', '', '')],
    ['GET', '/api/v1/namespaces/default/pods?watch=true&resourceVersion=5', R('watch', '', 'v1', 'default', 'pods', '', '')],
    ['GET', '/api/v1/namespaces/default/pods?watch=false', R('list', '', 'v1', 'default', 'pods', '', '')],
    ['GET', '/api/v1/namespaces/default/pods?watch=0', R('list', '', 'v1', 'default', 'pods', '', '')],
    ['GET', '/api/v1/namespaces/default/pods?watch=', R('watch', '', 'v1', 'default', 'pods', '', '')],
    ['GET', '/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb-1&watch=true', R('watch', '', 'v1', 'default', 'pods', '', 'web-1')],
    ['GET', '/api/v1/watch/namespaces/default/pods', R('watch', '', 'v1', 'default', 'pods', '', '')],
    ['GET', '/api/v1/watch/namespaces/default/pods/web-1', R('watch', '', 'v1', 'default', 'pods', '', 'web-1')],
    ['GET', '/api/v1/namespaces/default/pods/web-1', R('get', '', 'v1', 'default', 'pods', '', 'web-1')],
    ['HEAD', '/api/v1/namespaces/default/pods/web-1', R('get', '', 'v1', 'default', 'pods', '', 'web-1')],
    ['GET', '/api/v1/namespaces/default/pods/web-1/log?follow=true', R('get', '', 'v1', 'default', 'pods', 'log', 'web-1')],
    ['POST', '/api/v1/namespaces/default/pods/web-1/exec?command=ls', R('create', '', 'v1', 'default', 'pods', 'exec', 'web-1')],
    ['POST', '/api/v1/namespaces/default/pods', R('create', '', 'v1', 'default', 'pods', '', '')],
    ['PUT', '/api/v1/namespaces/default/pods/web-1/status', R('update', '', 'v1', 'default', 'pods', 'status', 'web-1')],
    ['PATCH', '/apis/apps/v1/namespaces/default/deployments/web/scale', R('patch', 'apps', 'v1', 'default', 'deployments', 'scale', 'web')],
    ['DELETE', '/api/v1/namespaces/default/pods/web-1', R('delete', '', 'v1', 'default', 'pods', '', 'web-1')],
    ['DELETE', '/api/v1/namespaces/default/pods', R('deletecollection', '', 'v1', 'default', 'pods', '', '')],
    ['GET', '/api/v1/nodes', R('list', '', 'v1', '', 'nodes', '', '')],
    ['GET', '/api/v1/pods', R('list', '', 'v1', '', 'pods', '', '')],
    ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin', R('get', 'rbac.authorization.k8s.io', 'v1', '', 'clusterroles', '', 'admin')],
    ['GET', '/api/v1/proxy/namespaces/default/pods/web-1/a/b', R('proxy', '', 'v1', 'default', 'pods', '', 'web-1')],
    ['GET', '/api/v1/namespaces/default/pods/web-1/proxy/metrics', R('get', '', 'v1', 'default', 'pods', 'proxy', 'web-1')],
    ['OPTIONS', '/api/v1/namespaces/default/pods', R('', '', 'v1', 'default', 'pods', '', '')],
  ];
  for (const [method, url, want] of cases) assert.deepEqual(info(method, url), want, `${method} ${url}`);
});

test('non-resource requests keep the lower-case HTTP method as verb', () => {
  for (const url of ['/version', '/api', '/api/v1', '/apis', '/apis/apps', '/apis/apps/v1', '/openapi/v3', '/healthz', '/']) {
    const r = info('GET', url);
    assert.equal(r.res, false, url);
    assert.equal(r.verb, 'get', url);
  }
  assert.equal(info('POST', '/version').verb, 'post');
});

test('ambiguous paths are refused', () => {
  for (const url of ['/api/v1/namespaces/default/pods%2Fweb-1', '/api/v1/namespaces//pods', '/api/v1/namespaces/%2E%2E/pods', '/api/v1/namespaces/default/pods/%ZZ', '/api/v1/namespaces/a%00b/pods']) {
    assert.throws(() => requestInfo('GET', url, new URLSearchParams()), /ambiguous|malformed/, url);
  }
  assert.throws(() => requestInfo('GET', '/api/v1/watch', new URLSearchParams()), /unable to determine/);
});

test('boolean query options read as the API server reads them', () => {
  const q = (s: string) => new URLSearchParams(s);
  for (const [query, want] of [['', false], ['follow=true', true], ['follow=1', true], ['follow=yes', true], ['follow=', true], ['follow=FALSE', false], ['follow=0', false], ['follow=false&follow=true', false], ['follow=true&follow=false', true]] as const) {
    assert.equal(queryBool(q(query), 'follow'), want, query);
  }
});
