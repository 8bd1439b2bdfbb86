/**
 * The SYNTHESIZED identity policies of a role (intrinsics resolved to fake ARNs) and an offline
 * evaluation of one AWS call against them with @cloud-copilot/iam-simulate.
 */
import { runSimulation, runUnsafeSimulation } from '@cloud-copilot/iam-simulate';
import { FAKE, type CfnResolver } from './cfn-resolve';

export interface PolicyDocument {
  Version?: string;
  Statement: Array<Record<string, unknown>>;
}

/** One AWS request as IAM sees it: who, which action on which resource, with which context. */
export interface AwsCall {
  /** Role logical id (in the pipeline stack) of the caller. */
  role: string;
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
  /** Where the call comes from, for messages. */
  why: string;
}

/** Every identity policy of a role: inline policies and the AWS::IAM::Policy resources attached. */
export function rolePolicies(resolver: CfnResolver, stack: string, roleLogicalId: string): PolicyDocument[] {
  const template = resolver.template(stack);
  const role = template.Resources[roleLogicalId];
  if (!role || role.Type !== 'AWS::IAM::Role') throw new Error(`${stack} has no role ${roleLogicalId}`);
  const managed = role.Properties?.ManagedPolicyArns as unknown[] | undefined;
  if (managed?.length) throw new Error(`${roleLogicalId} has managed policies (${JSON.stringify(managed)}); they are not simulated`);
  const docs: PolicyDocument[] = ((role.Properties?.Policies ?? []) as Array<{ PolicyDocument: unknown }>).map((p) => resolver.resolve(p.PolicyDocument, stack));
  for (const [id, r] of Object.entries(template.Resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    const roles = (r.Properties?.Roles ?? []) as Array<{ Ref?: string }>;
    if (roles.some((x) => x.Ref === roleLogicalId)) docs.push(resolver.resolve(r.Properties!.PolicyDocument, stack));
    void id;
  }
  return docs;
}

export type Decision = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';

/**
 * The resource-based policies of the synthesized app, by resource ARN: KMS key policies (a KMS
 * call is allowed only if the key policy lets IAM policies grant it) and S3 bucket policies.
 */
export function resourcePolicies(resolver: CfnResolver, stacks: string[]): (resource: string) => PolicyDocument | undefined {
  const byArn = new Map<string, PolicyDocument>();
  for (const stack of stacks) {
    for (const key of resolver.resources(stack, 'AWS::KMS::Key')) byArn.set(resolver.arn(stack, key.id), key.properties.KeyPolicy as PolicyDocument);
    for (const bp of resolver.resources(stack, 'AWS::S3::BucketPolicy')) byArn.set(`arn:aws:s3:::${bp.properties.Bucket as string}`, bp.properties.PolicyDocument as PolicyDocument);
  }
  return (resource) => {
    if (resource.startsWith('arn:aws:kms:')) return byArn.get(resource);
    const bucket = /^arn:aws:s3:::([^/]+)/.exec(resource);
    return bucket ? byArn.get(`arn:aws:s3:::${bucket[1]}`) : undefined;
  };
}

export async function decide(
  policies: PolicyDocument[],
  call: Omit<AwsCall, 'role' | 'why'>,
  resourcePolicy?: (resource: string) => PolicyDocument | undefined,
): Promise<Decision> {
  const rp = resourcePolicy?.(call.resource);
  const response = await runSimulation(
    {
      ...(rp ? { resourcePolicy: { Version: '2012-10-17', ...rp } } : {}),
      identityPolicies: policies.map((policy, i) => ({ name: `policy-${i}`, policy: { Version: '2012-10-17', ...policy } })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action: call.action,
        principal: `arn:aws:iam::${FAKE.account}:role/caller`,
        resource: { accountId: FAKE.account, resource: call.resource },
        // Every SDK call goes over TLS (the bucket policies deny anything else).
        contextVariables: { 'aws:SecureTransport': 'true', ...(call.context ?? {}) },
      },
    } as never,
    {},
  );
  if (response.resultType === 'error') {
    throw new Error(`iam-simulate rejected ${call.action} on ${call.resource}: ${JSON.stringify(response.errors)}`);
  }
  return response.overallResult as Decision;
}

/** The claims of a GitHub Actions OIDC token that a role trust policy can test. */
export interface GitHubToken {
  sub: string;
  aud?: string;
}

/**
 * `sts:AssumeRoleWithWebIdentity` with a GitHub token, evaluated against a role's SYNTHESIZED
 * trust policy (its AssumeRolePolicyDocument, the resource policy of the role), the caller being
 * the federated OIDC provider as STS presents it.
 *
 * runUnsafeSimulation, because iam-simulate's checked path keeps only the condition keys its IAM
 * data lists for the action (Google, Cognito, Amazon, Facebook), so it drops
 * `token.actions.githubusercontent.com:sub` and every token would be denied, the right one too.
 * The tests therefore always include a token that must be ALLOWED. The trust policy goes in as
 * iam-policy's "validated policy" shape only to carry a name: runUnsafeSimulation loads a bare
 * resource policy without metadata and then reads its name.
 */
export function decideWebIdentity(trustPolicy: PolicyDocument, roleArn: string, providerArn: string, token: GitHubToken): Decision {
  const host = 'token.actions.githubusercontent.com';
  const result = runUnsafeSimulation(
    {
      resourcePolicy: { __validated: true, policyDocument: { Version: '2012-10-17', ...trustPolicy }, metadata: { name: 'trust-policy' }, errors: [] },
      identityPolicies: [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action: 'sts:AssumeRoleWithWebIdentity',
        principal: providerArn,
        resource: { accountId: FAKE.account, resource: roleArn },
        contextVariables: { [`${host}:sub`]: token.sub, [`${host}:aud`]: token.aud ?? 'sts.amazonaws.com' },
      },
    } as never,
    {},
  );
  return result as Decision;
}
