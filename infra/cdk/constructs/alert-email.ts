import { Duration, Stack } from 'aws-cdk-lib';
import type * as cognito from 'aws-cdk-lib/aws-cognito';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as ses from 'aws-cdk-lib/aws-ses';
import { ENV } from '../../../contracts/config';
import { ALERT_ID_TAG } from '../../../contracts/resources';
import type { TollgateFunction } from './tollgate-function';

/** How often the alerts schedule sends what is due in the outbox (the local stack's timer runs as often). */
export const ALERT_SCHEDULE = Duration.minutes(1);

/**
 * metering's quota alerts (services/metering/quota-alerts.ts):
 *  - SES v2 `SendEmail` from `fromAddress` and from nothing else, through a configuration set of
 *    its own, and the variables that name both (services/metering/ses-sender.ts);
 *  - the configuration set's "Send" events to the default event bus, and a rule that hands those
 *    of alert emails (the message tag) to metering: the confirmation that settles a send whose
 *    answer was lost;
 *  - a rule every minute that runs the outbox's schedule in metering, so an alert whose send
 *    failed is sent without waiting for traffic.
 *
 * SES authorizes a send against the verified identity the From address belongs to: the address
 * itself when it is verified, otherwise its domain. Which of the two is verified is the operator's
 * choice, made outside the stack, so both identities are allowed; the `ses:FromAddress` condition
 * holds the sender to the one address either way, even with a whole domain verified. A send through
 * a configuration set is authorized against the set too.
 */
export function allowAlertEmail(fn: TollgateFunction, fromAddress: string): void {
  const stack = Stack.of(fn);
  const domain = fromAddress.slice(fromAddress.lastIndexOf('@') + 1);
  const identity = (name: string) =>
    stack.formatArn({ service: 'ses', resource: 'identity', resourceName: name });

  const configurationSet = new ses.ConfigurationSet(stack, 'QuotaAlertEmails', {
    // Only SES's own suppression of bounced and complained addresses; no tracking of opens or clicks.
    suppressionReasons: ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
  });
  configurationSet.addEventDestination('Sent', {
    destination: ses.EventDestination.eventBus(
      events.EventBus.fromEventBusName(stack, 'DefaultBus', 'default'),
    ),
    events: [ses.EmailSendingEvent.SEND],
  });

  fn.function.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ['ses:SendEmail'],
      resources: [
        identity(fromAddress),
        identity(domain),
        stack.formatArn({
          service: 'ses',
          resource: 'configuration-set',
          resourceName: configurationSet.configurationSetName,
        }),
      ],
      conditions: { StringEquals: { 'ses:FromAddress': fromAddress } },
    }),
  );
  fn.function.addEnvironment(ENV.alertFromAddress, fromAddress);
  fn.function.addEnvironment(ENV.alertConfigurationSet, configurationSet.configurationSetName);

  new events.Rule(stack, 'QuotaAlertDelivered', {
    description: "SES accepted a quota alert: metering records it sent, even if SendEmail's answer was lost",
    eventPattern: {
      source: ['aws.ses'],
      detailType: ['Email Sent'],
      detail: {
        mail: {
          tags: {
            [ALERT_ID_TAG]: [{ exists: true }],
            'ses:configuration-set': [configurationSet.configurationSetName],
          },
        },
      },
    },
    // EventBridge retries a failed invocation for up to a day (its default): a late confirmation
    // still settles an alert the confirmation window has not yet sent again.
    targets: [new targets.LambdaFunction(fn.function)],
  });
  new events.Rule(stack, 'QuotaAlertSchedule', {
    description: 'Sends the quota alerts that are due in the outbox: failed, unconfirmed or never sent',
    schedule: events.Schedule.rate(ALERT_SCHEDULE),
    // The next run is a minute away: no retries, and no queue of stale runs behind a slow one.
    targets: [new targets.LambdaFunction(fn.function, { retryAttempts: 0, maxEventAge: ALERT_SCHEDULE })],
  });
}

/**
 * Quota alerts go to the owner's address as it is in the user pool when they are sent
 * (services/metering/owner-address.ts): `AdminGetUser` on this pool only, and the variable that
 * names it.
 */
export function allowAlertAddressLookup(fn: TollgateFunction, userPool: cognito.IUserPool): void {
  fn.function.addToRolePolicy(
    new iam.PolicyStatement({ actions: ['cognito-idp:AdminGetUser'], resources: [userPool.userPoolArn] }),
  );
  fn.function.addEnvironment(ENV.alertUserPoolId, userPool.userPoolId);
}
