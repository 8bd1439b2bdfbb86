import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

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
