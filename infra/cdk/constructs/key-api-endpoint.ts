import { Annotations, Duration, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { LambdaTarget } from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { TollgateFunction } from './tollgate-function';

/** An owner's API behind the gate, served by the same load balancer as key-api. */
export interface OwnerApiRoute {
  /** The owner's function: an ALB-event handler that checks keys itself (services/gate). */
  readonly handler: TollgateFunction;
  /**
   * ALB path patterns (`/v1/*`, `/openapi.json`; case-sensitive, `*` and `?` wildcards) forwarded
   * to it, one listener rule each, evaluated in this order before the default action.
   */
  readonly pathPatterns: readonly string[];
}

export interface KeyApiEndpointProps {
  /** The function that answers every request no listener rule claims (the default action). */
  readonly keyApi: TollgateFunction;
  /**
   * An API whose paths the listener forwards to its own target group instead of key-api.
   * @default - none: key-api answers every request
   */
  readonly ownerApi?: OwnerApiRoute;
  /** Receives the ALB access logs (prefix `alb`) and the VPC flow logs (prefix `vpc-flow-logs`). */
  readonly logBucket: s3.IBucket;
  /**
   * ACM certificate (same region) for an HTTPS listener on 443; port 80 then only redirects to
   * HTTPS. Without one the listener is plain HTTP on port 80: fine for a first look, not for real
   * keys, which would cross the internet in clear text.
   * @default - HTTP only
   */
  readonly certificateArn?: string;
  /**
   * The name clients use (a CNAME or alias to the ALB that you create in your DNS; the
   * certificate must cover it). Only used to report the URL.
   * @default - the ALB's own DNS name
   */
  readonly domainName?: string;
  /**
   * Seconds an idle client connection is kept open.
   * @default Duration.seconds(60)
   */
  readonly idleTimeout?: Duration;
}

/**
 * The key API's front door: an internet-facing Application Load Balancer in a VPC of two public
 * subnets (no NAT gateways: nothing in the VPC initiates outbound traffic; Lambda runs outside
 * it), forwarding the owner API's paths (if any) to the owner API and every other request to
 * key-api.
 */
export class KeyApiEndpoint extends Construct {
  readonly vpc: ec2.Vpc;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  /** key-api's and the owner API's: HTTPS on 443 with a certificate, else plain HTTP on 80. */
  readonly listener: elbv2.ApplicationListener;
  /** With a certificate: port 80, answering every request with a 301 to the same URL over HTTPS. */
  readonly redirectListener?: elbv2.ApplicationListener;
  /** key-api's: the listener's default action. */
  readonly targetGroup: elbv2.ApplicationTargetGroup;
  /** The owner API's, when there is one. */
  readonly ownerApiTargetGroup?: elbv2.ApplicationTargetGroup;
  /** Where clients send requests, e.g. `https://api.example.com`. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: KeyApiEndpointProps) {
    super(scope, id);
    const https = props.certificateArn !== undefined;

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
      flowLogs: {
        rejected: {
          destination: ec2.FlowLogDestination.toS3(props.logBucket, 'vpc-flow-logs/'),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });

    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: this.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      dropInvalidHeaderFields: true,
      idleTimeout: props.idleTimeout ?? Duration.seconds(60),
    });
    this.loadBalancer.logAccessLogs(props.logBucket, 'alb');

    this.listener = https
      ? this.loadBalancer.addListener('Https', {
          port: 443,
          protocol: elbv2.ApplicationProtocol.HTTPS,
          certificates: [elbv2.ListenerCertificate.fromArn(props.certificateArn as string)],
          sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
          open: true,
        })
      : this.loadBalancer.addListener('Http', {
          port: 80,
          protocol: elbv2.ApplicationProtocol.HTTP,
          open: true,
        });
    if (https) {
      // Port 80 serves nothing but a permanent redirect, so a browser or a client that was given an
      // http:// URL ends up on TLS. A key sent over port 80 has still crossed the network in clear
      // text (the redirect cannot undo that), which is why docs/deploy.md tells clients to use the
      // https:// URL; no request on port 80 ever reaches a function.
      this.redirectListener = this.loadBalancer.addListener('HttpRedirect', {
        port: 80,
        protocol: elbv2.ApplicationProtocol.HTTP,
        open: true,
        defaultAction: elbv2.ListenerAction.redirect({
          protocol: elbv2.ApplicationProtocol.HTTPS,
          port: '443',
          permanent: true,
        }),
      });
    } else {
      Annotations.of(this).addWarningV2(
        'tollgate:plain-http',
        'No certificateArn: the key API listens on plain HTTP (port 80), and API keys cross the network in clear text.',
      );
    }
    Validations.of(this.loadBalancer).acknowledge({
      id: 'AwsSolutions-EC23',
      reason:
        'The key API is a public API: its clients call from anywhere, so the listener ports (443, and 80 ' +
        'for the redirect to it; or 80 alone without a certificate) are open to 0.0.0.0/0 and nothing else ' +
        'is. Keys are checked by key-api on every request.',
    });

    // Health checks would invoke key-api without a key, to no purpose: a Lambda target is healthy
    // as long as Lambda is.
    this.targetGroup = this.listener.addTargets('KeyApi', {
      targets: [new LambdaTarget(props.keyApi.function)],
      healthCheck: { enabled: false },
    });

    if (props.ownerApi) this.ownerApiTargetGroup = this.#route(props.ownerApi);

    const scheme = https ? 'https' : 'http';
    this.url = `${scheme}://${props.domainName ?? this.loadBalancer.loadBalancerDnsName}`;
  }

  /** Spacing between rule priorities, so a rule of your own can go between two of these. */
  static readonly RULE_PRIORITY_STEP = 10;

  /**
   * One rule per path pattern, at priorities 10, 20, … in the order given: the patterns may
   * overlap, and the first listed wins. (An ALB holds 100 rules besides the default actions.)
   */
  #route(ownerApi: OwnerApiRoute): elbv2.ApplicationTargetGroup {
    const targetGroup = new elbv2.ApplicationTargetGroup(this, 'OwnerApiTargets', {
      targets: [new LambdaTarget(ownerApi.handler.function)],
      // As key-api's: a health check would only invoke the function without a key.
      healthCheck: { enabled: false },
    });
    ownerApi.pathPatterns.forEach((pattern, index) => {
      new elbv2.ApplicationListenerRule(this, `OwnerApiRule${index + 1}`, {
        listener: this.listener,
        priority: (index + 1) * KeyApiEndpoint.RULE_PRIORITY_STEP,
        conditions: [elbv2.ListenerCondition.pathPatterns([pattern])],
        action: elbv2.ListenerAction.forward([targetGroup]),
      });
    });
    return targetGroup;
  }
}
