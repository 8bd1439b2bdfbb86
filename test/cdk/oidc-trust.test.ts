/**
 * Who may assume the deploy and diff roles: `sts:AssumeRoleWithWebIdentity` with GitHub OIDC
 * tokens, evaluated with @cloud-copilot/iam-simulate against the SYNTHESIZED trust policies of the
 * CiCd stack, for a repository on today's subject format (`repo:<owner>/<name>`) and one on the
 * immutable format GitHub gives repositories created after 2026-06-18
 * (`repo:<owner>-<owner-id>/<name>-<repo-id>`, set as githubOidcSubjectPrefix).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { synth } from './app-fixture';
import { CfnResolver, loadTemplates } from './cfn-resolve';
import { decideWebIdentity, type PolicyDocument } from './iam-policies';

const STACK = 'SocrataPipeline-CiCd';
const REPO = 'example-org/socrata-athena-pipeline';
const IMMUTABLE = 'repo:example-org-123456/socrata-athena-pipeline-456789';
const EXISTING_PROVIDER = 'arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com';

interface TrustedRole {
  arn: string;
  trust: PolicyDocument;
}

/** The deploy and diff roles of the synthesized CiCd stack, by environment, trust resolved. */
function roles(context: Record<string, string>): { provider: string; byEnvironment: Map<string, TrustedRole>; providers: number } {
  const result = synth({ env: 'dev', context });
  const resolver = new CfnResolver(loadTemplates(result.outdir));
  const resources = resolver.template(STACK).Resources;
  const byEnvironment = new Map<string, TrustedRole>();
  let provider = '';
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::IAM::Role') continue;
    const m = /^(Deploy|Diff)Role(dev|prod)/.exec(id);
    assert.ok(m, `unexpected role ${id}`);
    const githubEnvironment = m[1] === 'Deploy' ? m[2]! : `${m[2]!}-diff`;
    const trust = resolver.resolve(r.Properties!.AssumeRolePolicyDocument, STACK) as PolicyDocument;
    provider = (trust.Statement[0]!.Principal as { Federated: string }).Federated;
    byEnvironment.set(githubEnvironment, { arn: resolver.arn(STACK, id), trust });
  }
  const providers = Object.values(resources).filter((r) => r.Type === 'AWS::IAM::OIDCProvider').length;
  return { provider, byEnvironment, providers };
}

const ENVIRONMENTS = ['dev', 'prod', 'dev-diff', 'prod-diff'];

for (const [format, context, prefix] of [
  ['today’s format (the default, from githubRepository)', {}, `repo:${REPO}`],
  ['the immutable format (githubOidcSubjectPrefix)', { githubOidcSubjectPrefix: IMMUTABLE }, IMMUTABLE],
] as const) {
  describe(`deploy and diff roles, subject in ${format}`, () => {
    const { provider, byEnvironment } = roles(context);
    const decide = (env: string, sub: string, aud?: string) => decideWebIdentity(byEnvironment.get(env)!.trust, byEnvironment.get(env)!.arn, provider, { sub, ...(aud ? { aud } : {}) });

    test('a role for every GitHub environment the workflows use', () => {
      assert.deepEqual([...byEnvironment.keys()].sort(), [...ENVIRONMENTS].sort());
    });

    test('this repository in the role’s own environment is allowed', () => {
      for (const env of ENVIRONMENTS) assert.equal(decide(env, `${prefix}:environment:${env}`), 'Allowed', env);
    });

    test('another repository, a prefix look-alike, another environment, another audience: denied', () => {
      const [owner, name] = prefix.slice('repo:'.length).split('/') as [string, string];
      for (const env of ENVIRONMENTS) {
        for (const sub of [
          `repo:${owner}/other-repo:environment:${env}`,
          `repo:${owner}/${name}-evil:environment:${env}`,
          `repo:${owner}-evil/${name}:environment:${env}`,
          `${prefix}:ref:refs/heads/main`,
          `${prefix}:pull_request`,
          `${prefix}:environment:${env}-evil`,
          ...ENVIRONMENTS.filter((e) => e !== env).map((e) => `${prefix}:environment:${e}`),
        ]) {
          assert.equal(decide(env, sub), 'ImplicitlyDenied', `${env} must refuse ${sub}`);
        }
        assert.equal(decide(env, `${prefix}:environment:${env}`, 'sts.example.com'), 'ImplicitlyDenied', `${env}: other audience`);
      }
    });
  });
}

describe('one repository, one format: the two formats do not stand in for each other', () => {
  test('with the immutable prefix set, the same repository’s old-format token is denied (and the reverse)', () => {
    const immutable = roles({ githubOidcSubjectPrefix: IMMUTABLE });
    const old = roles({});
    const dev = (r: ReturnType<typeof roles>, sub: string) => decideWebIdentity(r.byEnvironment.get('dev')!.trust, r.byEnvironment.get('dev')!.arn, r.provider, { sub });
    assert.equal(dev(immutable, `repo:${REPO}:environment:dev`), 'ImplicitlyDenied');
    assert.equal(dev(old, `${IMMUTABLE}:environment:dev`), 'ImplicitlyDenied');
  });
});

describe('an existing GitHub OIDC provider (githubOidcProviderArn)', () => {
  test('is trusted instead of a new one, which is not created', () => {
    const created = roles({});
    assert.equal(created.providers, 1);
    const reused = roles({ githubOidcProviderArn: EXISTING_PROVIDER });
    assert.equal(reused.providers, 0, 'no AWS::IAM::OIDCProvider when one is given');
    assert.equal(reused.provider, EXISTING_PROVIDER);
    const role = reused.byEnvironment.get('prod')!;
    assert.equal(decideWebIdentity(role.trust, role.arn, EXISTING_PROVIDER, { sub: `repo:${REPO}:environment:prod` }), 'Allowed');
    assert.equal(decideWebIdentity(role.trust, role.arn, 'arn:aws:iam::123456789012:oidc-provider/other.example.com', { sub: `repo:${REPO}:environment:prod` }), 'ImplicitlyDenied');
  });
});
