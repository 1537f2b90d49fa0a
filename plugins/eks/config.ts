/**
 * The `eks` resource block and its access levels. An access level reads like an RBAC rule
 * (verbs × resources × namespaces, optionally names) so an operator can say in config what
 * a Role would say in the cluster; a grant's scope can only narrow it.
 */
import { z } from 'zod';
import { awsRegionSchema, roleArnSchema } from '../../core/public.ts';

/** Verbs the API server authorizes for resource requests (RequestInfo + authorization). */
export const KUBE_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', 'proxy'] as const;

const verb = z.enum([...KUBE_VERBS, '*']);

/** `pods`, `pods/log`, `pods/*`, `deployments.apps`, `*`. */
const resourceEntry = z
  .string()
  .regex(/^(\*|[a-z0-9][a-z0-9.-]*(\/(\*|[a-z0-9][a-z0-9-]*))?)$/, 'a resource is `*`, `name`, `name.group`, `name/subresource` or `name/*`');

/** A namespace name (DNS label) or `*`. */
const namespaceEntry = z.string().regex(/^(\*|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$/, 'a namespace is a DNS label or `*`');

const objectName = z.string().min(1).max(253).regex(/^[^/%]+$/, 'an object name has no `/` or `%`').refine((s) => s !== '.' && s !== '..', 'not a valid object name');

export const accessLevelSchema = z
  .strictObject({
    verbs: z.array(verb).min(1),
    resources: z.array(resourceEntry).min(1),
    namespaces: z.array(namespaceEntry).default([]),
    /** When set, only objects with these names (lists without a name are then denied). */
    names: z.array(objectName).min(1).optional(),
    /** Requests without a namespace (nodes, namespaces list, `-A`): off unless set. */
    clusterScoped: z.boolean().default(false),
  })
  .refine((l) => l.namespaces.length > 0 || l.clusterScoped, {
    message: 'an access level needs namespaces or clusterScoped: true',
  });

export type AccessLevel = z.infer<typeof accessLevelSchema>;

export const eksResourceSchema = z
  .strictObject({
    type: z.literal('eks'),
    /** The EKS cluster name: signed into every token as `x-k8s-aws-id`. */
    cluster: z.string().min(1).max(100).regex(/^[0-9A-Za-z][A-Za-z0-9\-_]*$/, 'an EKS cluster name'),
    region: awsRegionSchema,
    /** The cluster's API endpoint; with caFile. Without both, DescribeCluster tells us. */
    endpoint: z.url({ protocol: /^https$/, error: 'endpoint must be an https URL' }).optional(),
    caFile: z.string().min(1).optional(),
    /** Optional role airlock assumes for this cluster (per grant), mapped by an EKS access entry. */
    roleArn: roleArnSchema.optional(),
    access: z.record(z.string().regex(/^[a-z][a-z0-9_-]*$/), accessLevelSchema),
  })
  .refine((r) => (r.endpoint === undefined) === (r.caFile === undefined), {
    message: 'endpoint and caFile go together (leave both out to use DescribeCluster)',
  })
  .refine((r) => Object.keys(r.access).length > 0, { message: 'at least one access level is required' });

export type EksResource = z.infer<typeof eksResourceSchema>;

/** The effective scope stored in a grant (the access level, narrowed). */
export const eksScopeSchema = z.object({
  verbs: z.array(z.string()),
  resources: z.array(z.string()),
  namespaces: z.array(z.string()),
  names: z.array(z.string()).optional(),
  clusterScoped: z.boolean().default(false),
});
export type EksScope = z.infer<typeof eksScopeSchema>;
