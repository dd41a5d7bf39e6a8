/** The end of a billing period that starts at `startSeconds`, as Stripe counts calendar intervals (UTC). */
export function periodEnd(startSeconds: number, interval: string, count: number): number {
  const date = new Date(startSeconds * 1000);
  switch (interval) {
    case 'day':
      date.setUTCDate(date.getUTCDate() + count);
      break;
    case 'week':
      date.setUTCDate(date.getUTCDate() + 7 * count);
      break;
    case 'year':
      date.setUTCFullYear(date.getUTCFullYear() + count);
      break;
    default:
      date.setUTCMonth(date.getUTCMonth() + count);
  }
  return Math.floor(date.getTime() / 1000);
}
