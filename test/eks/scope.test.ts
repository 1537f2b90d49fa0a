/**
 * Scope: a grant narrows its access level and never widens it; a request is allowed only
 * when its verb, resource (with group and subresource), namespace and name are all inside.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessLevelSchema } from '../../plugins/eks/config.ts';
import { requestInfo } from '../../plugins/eks/request-info.ts';
import { authorizationVerb, authorize, resolveEksScope } from '../../plugins/eks/scope.ts';

const level = accessLevelSchema.parse({ verbs: ['get', 'list', 'watch'], resources: ['pods', 'pods/log', 'deployments.apps', 'configmaps/*'], namespaces: ['default', 'team-a'] });

const check = (scope: ReturnType<typeof resolveEksScope>, method: string, url: string, websocket = false) => {
  const u = new URL(url, 'https://x');
  const info = requestInfo(method, u.pathname, u.searchParams);
  return authorize(info, authorizationVerb(info, websocket), scope);
};

test('requested scope narrows the access level', () => {
  const s = resolveEksScope(level, { namespaces: ['team-a'], verbs: ['get'], resources: ['pods'] });
  assert.deepEqual(s, { verbs: ['get'], resources: ['pods'], namespaces: ['team-a'], clusterScoped: false });
  assert.deepEqual(resolveEksScope(level, undefined).namespaces, ['default', 'team-a']);
  assert.deepEqual(resolveEksScope(level, { resources: ['configmaps/status'] }).resources, ['configmaps/status']);
});

test('requested scope cannot widen the access level', () => {
  const wider: Array<[Record<string, unknown>, RegExp]> = [
    [{ namespaces: ['kube-system'] }, /namespaces "kube-system"/],
    [{ namespaces: ['*'] }, /namespaces "\*"/],
    [{ verbs: ['delete'] }, /verbs "delete"/],
    [{ resources: ['secrets'] }, /resources "secrets"/],
    [{ resources: ['pods/exec'] }, /resources "pods\/exec"/],
    [{ resources: ['pods/*'] }, /resources "pods\/\*"/],
    [{ resources: ['deployments.evil.example.com'] }, /resources/],
    [{ resources: ['*'] }, /resources "\*"/],
    [{ clusterScoped: true }, /clusterScoped/],
  ];
  for (const [requested, message] of wider) {
    assert.throws(() => resolveEksScope(level, requested), (e: Error & { code?: string }) => e.code === 'OUT_OF_SCOPE' && message.test(e.message), JSON.stringify(requested));
  }
  assert.throws(() => resolveEksScope(level, { tables: ['x'] }), /unknown scope key/);
  assert.throws(() => resolveEksScope(level, { namespaces: [] }), /non-empty list/);
  assert.throws(() => resolveEksScope(level, { names: [7] }), /non-empty list/);
});

test('requests are checked on verb, resource, group, subresource, namespace', () => {
  const s = resolveEksScope(level, undefined);
  assert.equal(check(s, 'GET', '/api/v1/namespaces/default/pods').allowed, true);
  assert.equal(check(s, 'GET', '/api/v1/namespaces/team-a/pods/web?watch=1').allowed, true);
  assert.equal(check(s, 'GET', '/api/v1/namespaces/default/pods?watch=true').allowed, true);
  assert.equal(check(s, 'GET', '/api/v1/namespaces/default/pods/web/log?follow=true').allowed, true);
  assert.equal(check(s, 'GET', '/apis/apps/v1/namespaces/default/deployments/web').allowed, true);
  assert.equal(check(s, 'GET', '/api/v1/namespaces/default/configmaps/x').allowed, true);
  assert.equal(check(s, 'PUT', '/api/v1/namespaces/default/configmaps/x/status').allowed, false, 'verb update');

  assert.match(check(s, 'GET', '/api/v1/namespaces/kube-system/pods').missing!, /namespace "kube-system"/);
  assert.match(check(s, 'DELETE', '/api/v1/namespaces/default/pods/web').missing!, /verb "delete"/);
  assert.match(check(s, 'DELETE', '/api/v1/namespaces/default/pods').missing!, /verb "deletecollection"/);
  assert.match(check(s, 'POST', '/api/v1/namespaces/default/pods').missing!, /verb "create"/);
  assert.match(check(s, 'GET', '/api/v1/namespaces/default/secrets').missing!, /resource "secrets"/);
  assert.match(check(s, 'GET', '/api/v1/namespaces/default/pods/web/exec', true).missing!, /verb "create"/, 'websocket exec is a create');
  assert.match(check(s, 'GET', '/api/v1/namespaces/default/pods/web/status').missing!, /resource "pods\/status"/);
  assert.match(check(s, 'GET', '/apis/evil.example.com/v1/namespaces/default/pods').missing!, /API group "evil.example.com"/, 'a CRD named pods is not pods');
  assert.match(check(s, 'GET', '/apis/extensions/v1beta1/namespaces/default/deployments').missing!, /API group "extensions"/, 'deployments.apps is only apps');
  assert.match(check(s, 'GET', '/api/v1/pods').missing!, /cluster-scoped/);
  assert.match(check(s, 'GET', '/api/v1/nodes').missing!, /resource "nodes"/);
  assert.match(check(s, 'OPTIONS', '/api/v1/namespaces/default/pods').missing!, /unknown method/);
});

test('built-in groups match an ungrouped entry; exec needs create on pods/exec', () => {
  const ops = resolveEksScope(accessLevelSchema.parse({ verbs: ['create', 'get'], resources: ['pods/exec', 'ingresses', 'jobs'], namespaces: ['*'] }), undefined);
  assert.equal(check(ops, 'GET', '/api/v1/namespaces/any/pods/web/exec?command=ls', true).allowed, true);
  assert.equal(check(ops, 'POST', '/api/v1/namespaces/any/pods/web/exec?command=ls').allowed, true);
  assert.equal(check(ops, 'GET', '/apis/networking.k8s.io/v1/namespaces/x/ingresses/a').allowed, true);
  assert.equal(check(ops, 'GET', '/apis/batch/v1/namespaces/x/jobs/a').allowed, true);
  assert.equal(check(ops, 'GET', '/apis/jobs.example.io/v1/namespaces/x/jobs/a').allowed, false);
  assert.equal(check(ops, 'GET', '/api/v1/namespaces/x/pods/web/attach', true).allowed, false);
});

test('names: only those objects, lists only with an exact name selector', () => {
  const s = resolveEksScope(level, { names: ['web-1'] });
  assert.equal(check(s, 'GET', '/api/v1/namespaces/default/pods/web-1').allowed, true);
  assert.equal(check(s, 'GET', '/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb-1&watch=1').allowed, true);
  assert.match(check(s, 'GET', '/api/v1/namespaces/default/pods/web-2').missing!, /object name "web-2"/);
  assert.match(check(s, 'GET', '/api/v1/namespaces/default/pods').missing!, /named object/);
  assert.equal(check(s, 'GET', '/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb-1%2Cmetadata.name%3Dweb-2').allowed, true, 'conjunction: still only web-1');
  assert.equal(check(s, 'GET', '/api/v1/namespaces/default/pods?fieldSelector=metadata.name!%3Dweb-2').allowed, false);
});

test('cluster-scoped requests need clusterScoped; discovery paths are open, others are not', () => {
  const cl = resolveEksScope(accessLevelSchema.parse({ verbs: ['get', 'list'], resources: ['nodes', 'namespaces'], clusterScoped: true }), undefined);
  assert.equal(check(cl, 'GET', '/api/v1/nodes').allowed, true);
  assert.equal(check(cl, 'GET', '/api/v1/namespaces').allowed, true);
  assert.equal(check(cl, 'GET', '/api/v1/namespaces/default/pods').allowed, false);
  const s = resolveEksScope(level, undefined);
  for (const p of ['/version', '/api', '/api/v1', '/apis', '/apis/apps', '/apis/apps/v1', '/openapi/v2', '/openapi/v3/api/v1', '/healthz']) assert.equal(check(s, 'GET', p).allowed, true, p);
  for (const p of ['/metrics', '/logs/kube-apiserver.log', '/debug/pprof', '/']) assert.equal(check(s, 'GET', p).allowed, false, p);
  assert.equal(check(s, 'POST', '/version').allowed, false);
  assert.throws(() => accessLevelSchema.parse({ verbs: ['get'], resources: ['pods'] }), /namespaces or clusterScoped/);
});
