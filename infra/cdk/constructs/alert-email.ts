import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ENV } from '../../../contracts/config';
import type { TollgateFunction } from './tollgate-function';

/**
 * metering's quota alerts: SES v2 `SendEmail` from `fromAddress` and from nothing else, and the
 * variable that names the sender (services/metering/ses-sender.ts).
 *
 * SES authorizes a send against the verified identity the From address belongs to: the address
 * itself when it is verified, otherwise its domain. Which of the two is verified is the operator's
 * choice, made outside the stack, so both identities are allowed; the `ses:FromAddress` condition
 * holds the sender to the one address either way, even with a whole domain verified.
 */
export function allowAlertEmail(fn: TollgateFunction, fromAddress: string): void {
  const stack = Stack.of(fn);
  const domain = fromAddress.slice(fromAddress.lastIndexOf('@') + 1);
  const identity = (name: string) =>
    stack.formatArn({ service: 'ses', resource: 'identity', resourceName: name });
  fn.function.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ['ses:SendEmail'],
      resources: [identity(fromAddress), identity(domain)],
      conditions: { StringEquals: { 'ses:FromAddress': fromAddress } },
    }),
  );
  fn.function.addEnvironment(ENV.alertFromAddress, fromAddress);
}
