import { Duration, Lazy, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import { S3BucketOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { BucketDeployment, Source } from 'aws-cdk-lib/aws-s3-deployment';
import { Construct } from 'constructs';
import { type WebConfig, webContentSecurityPolicy } from '../../../contracts/web-config';
import { acknowledgeThirdPartyFindings } from '../compliance';

export interface WebHostingProps {
  /** Receives CloudFront logs (prefix `cloudfront/`) and the bucket's access logs (`web-bucket/`). */
  readonly logBucket: s3.IBucket;
  /**
   * Custom domain names for the distribution (you create the DNS records).
   * @default - the distribution's `*.cloudfront.net` name only
   */
  readonly domainNames?: readonly string[];
  /**
   * ACM certificate in us-east-1 covering `domainNames`; required with them.
   * @default - CloudFront's default certificate
   */
  readonly certificateArn?: string;
}

/**
 * The account owner's page: a private S3 bucket behind CloudFront (Origin Access Control, so the
 * bucket is never public). The page's files are deployed by `deploy()`, only when they exist.
 */
export class WebHosting extends Construct {
  readonly bucket: s3.Bucket;
  readonly distribution: cloudfront.Distribution;
  /** The page's origin, e.g. `https://d111111abcdef8.cloudfront.net` or the first custom domain. */
  readonly origin: string;
  /** Every origin the page is served from (custom domains, then the CloudFront domain). */
  readonly origins: readonly string[];
  /**
   * The page's security headers: the Content-Security-Policy of contracts/web-config.ts (the local
   * site's), HSTS, nosniff, frame denial and the referrer policy.
   */
  readonly responseHeadersPolicy: cloudfront.ResponseHeadersPolicy;
  readonly #connectOrigins: string[] = [];

  constructor(scope: Construct, id: string, props: WebHostingProps) {
    super(scope, id);
    const domainNames = props.domainNames ?? [];
    this.bucket = this.#bucket(props.logBucket);
    this.responseHeadersPolicy = this.#securityHeaders();
    this.distribution = this.#distribution(props, domainNames);
    this.origins = [...domainNames, this.distribution.distributionDomainName].map(
      (name) => `https://${name}`,
    );
    this.origin = this.origins[0] as string;
    this.#acknowledgeFindings(props.certificateArn);
  }

  #bucket(logBucket: s3.IBucket): s3.Bucket {
    return new s3.Bucket(this, 'Bucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      serverAccessLogsBucket: logBucket,
      serverAccessLogsPrefix: 'web-bucket/',
      // Build output, reproducible from the repository; emptied by hand on tear-down (see
      // docs/deploy.md) rather than by a custom-resource Lambda.
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  #securityHeaders(): cloudfront.ResponseHeadersPolicy {
    // The APIs the page calls are built after the distribution (their CORS settings name its
    // origin), so their origins join the policy's connect-src through allowConnections().
    return new cloudfront.ResponseHeadersPolicy(this, 'SecurityHeaders', {
      comment: 'Tollgate web page: CSP (as the local site), HSTS, nosniff, frame denial, referrer policy',
      securityHeadersBehavior: {
        contentSecurityPolicy: {
          contentSecurityPolicy: Lazy.string({
            produce: () => webContentSecurityPolicy(this.#connectOrigins),
          }),
          override: true,
        },
        strictTransportSecurity: {
          accessControlMaxAge: Duration.days(365),
          includeSubdomains: true,
          override: true,
        },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        referrerPolicy: {
          referrerPolicy: cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
          override: true,
        },
      },
    });
  }

  #distribution(props: WebHostingProps, domainNames: readonly string[]): cloudfront.Distribution {
    return new cloudfront.Distribution(this, 'Distribution', {
      comment: 'Tollgate web page',
      defaultRootObject: 'index.html',
      defaultBehavior: {
        origin: S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: this.responseHeadersPolicy,
      },
      // A single-page app: paths the bucket does not have are the page's own routes.
      errorResponses: [403, 404].map((httpStatus) => ({
        httpStatus,
        responseHttpStatus: 200,
        responsePagePath: '/index.html',
        ttl: Duration.minutes(1),
      })),
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      enableLogging: true,
      logBucket: props.logBucket,
      logFilePrefix: 'cloudfront/',
      ...(props.certificateArn
        ? {
            domainNames: [...domainNames],
            certificate: acm.Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn),
            minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
          }
        : {}),
    });
  }

  #acknowledgeFindings(certificateArn: string | undefined): void {
    Validations.of(this.distribution).acknowledge(
      {
        id: 'AwsSolutions-CFR1',
        reason: 'Account owners may sign in from any country; there is no geographic restriction to enforce.',
      },
      {
        id: 'AwsSolutions-CFR2',
        reason:
          'The distribution serves static files only (every API call goes to API Gateway with a token); a WAF ' +
          'web ACL would cost more than the page it protects.',
      },
    );
    if (!certificateArn) {
      Validations.of(this.distribution).acknowledge({
        id: 'AwsSolutions-CFR4',
        reason:
          'Without a custom domain the distribution uses the *.cloudfront.net certificate, whose TLS policy ' +
          'CloudFront fixes; with webCertificateArn the minimum is TLSv1.2_2021.',
      });
    }
  }

  /**
   * Lets the page call these origins (`https://host`, no path): added to the CSP's connect-src, in
   * the order given, as the local site adds its stack's.
   */
  allowConnections(origins: readonly string[]): void {
    this.#connectOrigins.push(...origins);
  }

  /**
   * Uploads the built page plus `/config.json` (the stack's endpoints, in the shape the page's own
   * schema in contracts/web-config.ts checks), and invalidates the cache.
   * @param assetsPath a directory with index.html (the web build's output)
   */
  deploy(assetsPath: string, config: WebConfig): BucketDeployment {
    const deployment = new BucketDeployment(this, 'Deployment', {
      sources: [Source.asset(assetsPath), Source.jsonData('config.json', config)],
      destinationBucket: this.bucket,
      distribution: this.distribution,
      distributionPaths: ['/*'],
      memoryLimit: 256,
    });
    // BucketDeployment runs a singleton Lambda created at stack level, outside this construct.
    const stack = Stack.of(this);
    const handlers = stack.node.children.filter((child) =>
      child.node.id.startsWith('Custom::CDKBucketDeployment'),
    );
    for (const handler of handlers) {
      Validations.of(handler).acknowledge({
        id: 'AwsSolutions-L1',
        reason:
          "The handler's Python runtime is chosen by aws-cdk-lib's BucketDeployment, not by this stack.",
      });
      acknowledgeThirdPartyFindings(
        handler,
        'AwsSolutions-IAM4',
        "aws-cdk-lib's BucketDeployment handler logs through AWSLambdaBasicExecutionRole; it runs only while " +
          'CloudFormation deploys the page.',
      );
      acknowledgeThirdPartyFindings(
        handler,
        'AwsSolutions-IAM5',
        'BucketDeployment copies objects of unknown keys from the CDK asset bucket to the web bucket ' +
          '(s3:GetObject*/List*/DeleteObject* on bucket/*) and invalidates the distribution.',
      );
    }
    return deployment;
  }
}
