import { type InjectionKey, inject, provide, type Ref, ref } from 'vue';
import { type Actions, useActions } from './actions';
import { type AdminAccount, type AdminPlan, describeError, SessionExpiredError } from './api';
import { duration } from './format';
import { type Session, usePolling } from './session';

/** Usage moves with the traffic; plans and accounts rarely change but by this page. */
export const ADMIN_REFRESH_MS = 10_000;

/** What the admin page's parts share: the lists it polls, its actions, and how soon changes apply. */
export interface AdminContext {
  readonly accounts: Ref<AdminAccount[] | undefined>;
  readonly plans: Ref<AdminPlan[] | undefined>;
  /** The next page's cursor, if there is one. */
  readonly next: Ref<string | undefined>;
  readonly asOf: Ref<string | undefined>;
  /** The cursors of the pages before this one; the last is this page's (undefined: the first). */
  readonly cursors: Ref<Array<string | undefined>>;
  readonly loadError: Ref<string | undefined>;
  readonly actions: Actions;
  /** Reloads now; what an action calls once it changed something. */
  refresh(): Promise<void>;
  turnPage(direction: 'next' | 'previous'): void;
  /** "10 seconds": the gate enforces a plan or status change within its configured fresh window. */
  readonly enforcedWithin: string;
}

const adminKey: InjectionKey<AdminContext> = Symbol('admin');

/** Loads the accounts and plans, polling them while the page is shown, and offers them to its parts. */
export function provideAdmin(session: Session): AdminContext {
  const admin = session.api.admin;
  const accounts = ref<AdminAccount[]>();
  const plans = ref<AdminPlan[]>();
  const next = ref<string>();
  const asOf = ref<string>();
  const cursors = ref<Array<string | undefined>>([undefined]);
  const loadError = ref<string>();

  async function load(): Promise<void> {
    const cursor = cursors.value.at(-1);
    try {
      const [page, planList] = await Promise.all([
        session.guard(() => admin.listAccounts(cursor)),
        session.guard(() => admin.listPlans()),
      ]);
      // A slow answer for a page the admin has since left is not shown.
      if (cursor !== cursors.value.at(-1)) return;
      accounts.value = [...page.accounts].sort((a, b) => a.email.localeCompare(b.email));
      next.value = page.next;
      asOf.value = page.asOf;
      plans.value = planList.plans;
      loadError.value = undefined;
    } catch (error) {
      if (!(error instanceof SessionExpiredError)) loadError.value = describeError(error);
    }
  }

  const polling = usePolling(load, ADMIN_REFRESH_MS);

  function turnPage(direction: 'next' | 'previous'): void {
    if (direction === 'next' && next.value) cursors.value = [...cursors.value, next.value];
    if (direction === 'previous' && cursors.value.length > 1) cursors.value = cursors.value.slice(0, -1);
    accounts.value = undefined;
    void polling.now();
  }

  const context: AdminContext = {
    accounts,
    plans,
    next,
    asOf,
    cursors,
    loadError,
    actions: useActions(session),
    refresh: polling.now,
    turnPage,
    enforcedWithin: duration(session.config.windows.keyCacheFreshMs),
  };
  provide(adminKey, context);
  return context;
}

export function useAdmin(): AdminContext {
  const context = inject(adminKey);
  if (!context) throw new Error('useAdmin() outside the admin page');
  return context;
}
