/**
 * The billing table's key layout (contracts/resources.ts `billingTable`): one place, so the two
 * owners of its items — billing-accounts.ts (customers, subscriptions, handled events) and
 * export-ledger.ts (what was reported, per account and day) — cannot collide.
 *
 *  - `ACCOUNT#<accountId>` / `CUSTOMER`: the account's Stripe customer and subscription standing
 *  - `ACCOUNT#<accountId>` / `TRANSITION#<iso time>#<event id>`: one plan or standing change
 *  - `ACCOUNT#<accountId>` / `DAY#<yyyy-mm-dd>`: the day's total last reported, and how
 *  - `ACCOUNT#<accountId>` / `LEASE#export`: who exports the account now (one exporter at a time)
 *  - `CUSTOMER#<customerId>` / `ACCOUNT`: the account a Stripe customer belongs to
 *  - `EVENT#<eventId>` / `EVENT`: a Stripe event already handled (expires by TTL)
 */

export const accountPartition = (accountId: string): string => `ACCOUNT#${accountId}`;

export const customerItem = (accountId: string) => ({ pk: accountPartition(accountId), sk: 'CUSTOMER' });

export const TRANSITION_PREFIX = 'TRANSITION#';
export const transitionItem = (accountId: string, at: string, eventId: string) => ({
  pk: accountPartition(accountId),
  sk: `${TRANSITION_PREFIX}${at}#${eventId}`,
});

export const DAY_PREFIX = 'DAY#';
export const reportedDayItem = (accountId: string, day: string) => ({
  pk: accountPartition(accountId),
  sk: `${DAY_PREFIX}${day}`,
});

export const exportLeaseItem = (accountId: string) => ({
  pk: accountPartition(accountId),
  sk: 'LEASE#export',
});

export const customerAccountItem = (customerId: string) => ({ pk: `CUSTOMER#${customerId}`, sk: 'ACCOUNT' });

export const handledEventItem = (eventId: string) => ({ pk: `EVENT#${eventId}`, sk: 'EVENT' });
