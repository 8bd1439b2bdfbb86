/* eslint-disable @typescript-eslint/no-explicit-any -- walks synthesized CloudFormation JSON */
/**
 * Resolves the intrinsic functions of the synthesized templates to fixed fake values (account
 * 123456789012, us-east-1), the way CloudFormation would at deploy time, so tests can execute the
 * synthesized state machine definition and evaluate the synthesized IAM policies as written,
 * never a hand-written copy. Cross-stack references (Fn::ImportValue, and Fn::GetStackOutput
 * should one appear) are followed into the exporting stack's outputs.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

export const FAKE = { account: '123456789012', region: 'us-east-1', partition: 'aws' } as const;
const { account: A, region: R } = FAKE;

interface Resource {
  Type: string;
  Properties?: Record<string, any>;
}
interface TemplateJson {
  Resources: Record<string, Resource>;
  Outputs?: Record<string, { Value: unknown; Export?: { Name?: unknown } }>;
}

/** All templates of a cloud assembly directory, by stack name. */
export function loadTemplates(outdir: string): Map<string, TemplateJson> {
  const out = new Map<string, TemplateJson>();
  for (const f of readdirSync(outdir).filter((x) => x.endsWith('.template.json'))) {
    out.set(f.replace(/\.template\.json$/, ''), JSON.parse(readFileSync(path.join(outdir, f), 'utf8')));
  }
  return out;
}

/** The physical name CloudFormation would give (explicit name property, else the logical id). */
function physicalName(logicalId: string, r: Resource): string {
  const p = r.Properties ?? {};
  switch (r.Type) {
    case 'AWS::S3::Bucket':
      return p.BucketName ?? logicalId.toLowerCase();
    case 'AWS::Glue::Database':
      return p.DatabaseInput?.Name ?? logicalId;
    case 'AWS::Glue::Crawler':
    case 'AWS::Athena::WorkGroup':
      return p.Name ?? logicalId;
    case 'AWS::Lambda::Function':
      return p.FunctionName ?? logicalId;
    case 'AWS::Logs::LogGroup':
      return p.LogGroupName ?? logicalId;
    case 'AWS::IAM::Role':
      return p.RoleName ?? logicalId;
    case 'AWS::StepFunctions::StateMachine':
      return p.StateMachineName ?? logicalId;
    case 'AWS::KinesisFirehose::DeliveryStream':
      return p.DeliveryStreamName ?? logicalId;
    case 'AWS::ECS::Cluster':
      return p.ClusterName ?? logicalId;
    case 'AWS::SNS::Topic':
      return p.TopicName ?? logicalId;
    default:
      return logicalId;
  }
}

function arnOf(logicalId: string, r: Resource): string {
  const name = physicalName(logicalId, r);
  switch (r.Type) {
    case 'AWS::S3::Bucket':
      return `arn:aws:s3:::${name}`;
    case 'AWS::KMS::Key':
      return `arn:aws:kms:${R}:${A}:key/${logicalId}`;
    case 'AWS::Lambda::Function':
      return `arn:aws:lambda:${R}:${A}:function:${name}`;
    case 'AWS::Logs::LogGroup':
      return `arn:aws:logs:${R}:${A}:log-group:${name}:*`;
    case 'AWS::IAM::Role':
      return `arn:aws:iam::${A}:role/${name}`;
    case 'AWS::KinesisFirehose::DeliveryStream':
      return `arn:aws:firehose:${R}:${A}:deliverystream/${name}`;
    case 'AWS::StepFunctions::StateMachine':
      return `arn:aws:states:${R}:${A}:stateMachine:${name}`;
    case 'AWS::ECS::Cluster':
      return `arn:aws:ecs:${R}:${A}:cluster/${name}`;
    case 'AWS::ECS::TaskDefinition':
      return `arn:aws:ecs:${R}:${A}:task-definition/${r.Properties?.Family ?? logicalId}:1`;
    case 'AWS::SNS::Topic':
      return `arn:aws:sns:${R}:${A}:${name}`;
    case 'AWS::EC2::VPC':
      return `arn:aws:ec2:${R}:${A}:vpc/vpc-${logicalId}`;
    case 'AWS::IAM::OIDCProvider':
      return `arn:aws:iam::${A}:oidc-provider/${String(r.Properties?.Url ?? logicalId).replace(/^https:\/\//, '')}`;
    default:
      return `arn:aws:fake:${R}:${A}:${r.Type}/${logicalId}`;
  }
}

function refOf(logicalId: string, r: Resource): string {
  switch (r.Type) {
    case 'AWS::SNS::Topic':
    case 'AWS::ECS::TaskDefinition':
    case 'AWS::StepFunctions::StateMachine':
    case 'AWS::IAM::ManagedPolicy':
    case 'AWS::IAM::OIDCProvider':
      return arnOf(logicalId, r);
    case 'AWS::EC2::SecurityGroup':
      return `sg-${logicalId}`;
    case 'AWS::EC2::Subnet':
      return `subnet-${logicalId}`;
    case 'AWS::KMS::Key':
      return logicalId;
    default:
      return physicalName(logicalId, r);
  }
}

export class CfnResolver {
  constructor(private readonly templates: Map<string, TemplateJson>) {}

  template(stack: string): TemplateJson {
    const t = this.templates.get(stack);
    if (!t) throw new Error(`no template ${stack}`);
    return t;
  }

  /** The value with every intrinsic resolved, within `stack`. */
  resolve(value: unknown, stack: string): any {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v, stack));
    if (value === null || typeof value !== 'object') return value;
    const obj = value as Record<string, any>;
    const keys = Object.keys(obj);
    if (keys.length === 1) {
      const [k] = keys as [string];
      const arg = obj[k];
      const t = this.template(stack);
      switch (k) {
        case 'Ref': {
          if (arg === 'AWS::Partition') return 'aws';
          if (arg === 'AWS::Region') return R;
          if (arg === 'AWS::AccountId') return A;
          if (arg === 'AWS::URLSuffix') return 'amazonaws.com';
          if (arg === 'AWS::StackName') return stack;
          const r = t.Resources[arg];
          if (!r) throw new Error(`${stack}: Ref to unknown ${arg}`);
          return refOf(arg, r);
        }
        case 'Fn::GetAtt': {
          const [id, attr] = (Array.isArray(arg) ? arg : String(arg).split('.')) as [string, string];
          const r = t.Resources[id];
          if (!r) throw new Error(`${stack}: GetAtt of unknown ${id}`);
          if (attr === 'Arn') return arnOf(id, r);
          if (attr === 'GroupId') return `sg-${id}`;
          if (attr === 'Name') return physicalName(id, r);
          return `${id}.${attr}`;
        }
        case 'Fn::Join': {
          const [sep, parts] = arg as [string, unknown[]];
          return this.resolve(parts, stack).join(sep);
        }
        case 'Fn::Select': {
          const [i, list] = arg as [number, unknown];
          return this.resolve(list, stack)[Number(i)];
        }
        case 'Fn::Split': {
          const [sep, s] = arg as [string, unknown];
          return String(this.resolve(s, stack)).split(sep);
        }
        case 'Fn::GetAZs':
          return [`${R}a`, `${R}b`];
        case 'Fn::Sub': {
          const [text, vars] = (typeof arg === 'string' ? [arg, {}] : arg) as [string, Record<string, unknown>];
          return text.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
            if (name in vars) return String(this.resolve(vars[name], stack));
            if (name.includes('.')) return String(this.resolve({ 'Fn::GetAtt': name.split('.') }, stack));
            return String(this.resolve({ Ref: name }, stack));
          });
        }
        case 'Fn::GetStackOutput': {
          const other = this.template(arg.StackName);
          const output = other.Outputs?.[arg.OutputName];
          if (!output) throw new Error(`${arg.StackName} has no output ${arg.OutputName}`);
          return this.resolve(output.Value, arg.StackName);
        }
        case 'Fn::ImportValue': {
          const name = this.resolve(arg, stack) as string;
          for (const [other, template] of this.templates) {
            for (const output of Object.values(template.Outputs ?? {})) {
              if ((output as { Export?: { Name?: unknown } }).Export?.Name === name) return this.resolve(output.Value, other);
            }
          }
          throw new Error(`${stack}: Fn::ImportValue of ${name}, which no stack exports`);
        }
        default:
          break;
      }
    }
    return Object.fromEntries(keys.map((key) => [key, this.resolve(obj[key], stack)]));
  }

  /** Resolved resources of one type in a stack. */
  resources(stack: string, type: string): Array<{ id: string; properties: Record<string, any> }> {
    return Object.entries(this.template(stack).Resources)
      .filter(([, r]) => r.Type === type)
      .map(([id, r]) => ({ id, properties: this.resolve(r.Properties ?? {}, stack) }));
  }

  /** ARN (as resolved) of a resource by logical id. */
  arn(stack: string, logicalId: string): string {
    return this.resolve({ 'Fn::GetAtt': [logicalId, 'Arn'] }, stack);
  }
}
