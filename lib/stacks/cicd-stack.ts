import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { oidcSubject, type CicdConfig } from '../config/environment-config';

export const GITHUB_OIDC_URL = 'https://token.actions.githubusercontent.com';
const TOKEN_HOST = 'token.actions.githubusercontent.com';

export interface CicdStackProps extends StackProps {
  readonly cicd: CicdConfig;
  /** Environments that get a deploy role (GitHub environments of the same names). */
  readonly environments: readonly string[];
}

/**
 * GitHub Actions → AWS without stored keys: the account's GitHub OIDC provider (created here, or
 * the existing one given as `oidcProviderArn`) and one deploy role per environment, assumable only
 * by workflow jobs of this repository running in the GitHub environment of that name. A deploy
 * role may only assume the CDK bootstrap roles, which do the actual deployment (the same model as
 * `cdk deploy` from a laptop).
 */
export class CicdStack extends Stack {
  readonly provider: iam.IOidcProvider;
  readonly deployRoles: Record<string, iam.Role> = {};
  /** Per environment, a role for `cdk diff` only (GitHub environment `<env>-diff`, no reviewers). */
  readonly diffRoles: Record<string, iam.Role> = {};
  readonly bootstrapQualifier: string;

  constructor(scope: Construct, id: string, props: CicdStackProps) {
    super(scope, id, props);
    // One provider per URL per account: an account that already has GitHub's reuses it.
    this.provider = props.cicd.oidcProviderArn
      ? iam.OidcProviderNative.fromOidcProviderArn(this, 'GitHubOidc', props.cicd.oidcProviderArn)
      : new iam.OidcProviderNative(this, 'GitHubOidc', { url: GITHUB_OIDC_URL, clientIds: ['sts.amazonaws.com'] });
    // The whole subject, compared exactly: the repository's prefix in whichever format GitHub
    // issues it (see oidcSubjectPrefix), then the environment. No StringLike, so neither another
    // repository nor another environment (nor `<name>-evil`) can match.
    const trust = (environment: string) =>
      new iam.WebIdentityPrincipal(this.provider.oidcProviderArn, {
        StringEquals: {
          [`${TOKEN_HOST}:aud`]: 'sts.amazonaws.com',
          [`${TOKEN_HOST}:sub`]: oidcSubject(props.cicd, environment),
        },
      });
    const qualifier = props.cicd.bootstrapQualifier;
    this.bootstrapQualifier = qualifier;
    for (const env of props.environments) {
      const role = new iam.Role(this, `DeployRole-${env}`, {
        description: `GitHub Actions deploys of ${props.cicd.repository} to ${env}`,
        maxSessionDuration: Duration.hours(1),
        assumedBy: trust(env),
      });
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'AssumeCdkBootstrapRoles',
          actions: ['sts:AssumeRole', 'sts:TagSession'],
          resources: [`arn:${this.partition}:iam::${this.account}:role/cdk-${qualifier}-*`],
        }),
      );
      this.deployRoles[env] = role;
      new CfnOutput(this, `DeployRoleArn-${env}`, {
        value: role.roleArn,
        description: `Set as the AWS_DEPLOY_ROLE_ARN variable of the GitHub environment "${env}"`,
      });

      // The diff shown to an approver before the gated deploy: read-only, so its GitHub
      // environment needs no reviewers. It may assume only the bootstrap lookup role (ReadOnly).
      const diffEnv = `${env}-diff`;
      const diffRole = new iam.Role(this, `DiffRole-${env}`, {
        description: `GitHub Actions cdk diff of ${props.cicd.repository} against ${env} (read-only)`,
        maxSessionDuration: Duration.hours(1),
        assumedBy: trust(diffEnv),
      });
      diffRole.addToPolicy(
        new iam.PolicyStatement({
          sid: 'AssumeCdkLookupRoleOnly',
          actions: ['sts:AssumeRole', 'sts:TagSession'],
          resources: [`arn:${this.partition}:iam::${this.account}:role/cdk-${qualifier}-lookup-role-*`],
        }),
      );
      this.diffRoles[env] = diffRole;
      new CfnOutput(this, `DiffRoleArn-${env}`, {
        value: diffRole.roleArn,
        description: `Set as the AWS_DEPLOY_ROLE_ARN variable of the GitHub environment "${diffEnv}"`,
      });
    }
  }
}
