import path from 'node:path';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

const REPO_ROOT = path.join(import.meta.dirname, '..', '..');

/**
 * An execution role for one Lambda function that may write logs to that function's own log group
 * only. Replaces AWSLambdaBasicExecutionRole, whose CreateLogGroup/CreateLogStream/PutLogEvents
 * apply to every log group in the account. The log group is created by the stack, so the role
 * needs no logs:CreateLogGroup.
 */
export function functionRole(scope: Construct, id: string, logGroup: logs.ILogGroup, description: string): iam.Role {
  const role = new iam.Role(scope, id, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description });
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'OwnLogGroupOnly',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      // LogGroup.logGroupArn ends in ":*", which covers the group's log streams.
      resources: [logGroup.logGroupArn],
    }),
  );
  return role;
}

/**
 * What every Lambda function of the project shares: Node.js 22 on ARM64, active tracing, JSON logs
 * to its own log group with the role above, and a local esbuild ESM bundle of its TypeScript entry.
 */
export function houseFunctionProps(role: iam.IRole, logGroup: logs.ILogGroup) {
  return {
    handler: 'handler',
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    tracing: lambda.Tracing.ACTIVE,
    role,
    logGroup,
    loggingFormat: lambda.LoggingFormat.JSON,
    depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
    projectRoot: REPO_ROOT,
    bundling: {
      format: nodejs.OutputFormat.ESM,
      target: 'node22',
      minify: true,
      sourceMap: true,
      sourcesContent: false,
      // ESM bundles need a require() for the CommonJS dependencies esbuild inlines.
      banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      // The Lambda Node.js 22 runtime ships AWS SDK v3; bundling it anyway pins the version we test with.
      externalModules: [],
    },
  } satisfies Partial<nodejs.NodejsFunctionProps>;
}

/**
 * A house function in `scope` with its own log group and role (ids `LogGroup`, `Role`, `Function`);
 * `props` adds what is its own: entry, sizes, environment.
 */
export function houseFunction(scope: Construct, roleDescription: string, logRetention: logs.RetentionDays, props: nodejs.NodejsFunctionProps): nodejs.NodejsFunction {
  const logGroup = new logs.LogGroup(scope, 'LogGroup', { retention: logRetention });
  const role = functionRole(scope, 'Role', logGroup, roleDescription);
  return new nodejs.NodejsFunction(scope, 'Function', { ...houseFunctionProps(role, logGroup), ...props });
}
