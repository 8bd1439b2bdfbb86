import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface TransformNetworkProps {
  readonly logRetention: logs.RetentionDays;
}

/**
 * Where transform tasks run, at no idle cost: a VPC with public subnets only (no NAT gateway,
 * no interface endpoints, both billed by the hour), tasks get a public IP and a security group
 * that allows no inbound traffic at all. Outbound HTTPS reaches ECR, S3, Athena, Glue and Socrata.
 */
export class TransformNetwork extends Construct {
  readonly vpc: ec2.Vpc;
  readonly cluster: ecs.Cluster;
  readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: TransformNetworkProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
      // S3 traffic goes through the free gateway endpoint instead of the internet.
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
      flowLogs: {
        rejected: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(new logs.LogGroup(this, 'FlowLogs', { retention: props.logRetention })),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });
    this.securityGroup = new ec2.SecurityGroup(this, 'TaskSecurityGroup', {
      vpc: this.vpc,
      description: 'Transform tasks: no inbound rules, outbound HTTPS only',
      allowAllOutbound: false,
    });
    this.securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS APIs, ECR and the Socrata portal');
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
  }
}
