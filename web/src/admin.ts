import { type InjectionKey, inject, provide, type Ref, ref } from 'vue';
import { type Actions, useActions } from './actions';
import {
  type AdminAccount,
  type AdminAccountsQuery,
  type AdminPlan,
  describeError,
  SessionExpiredError,
} from './api';
import { duration } from './format';
import { type Session, usePolling } from './session';

/**
 * Usage moves with the traffic; plans and accounts rarely change but by this page. Only the page
 * shown is read again (its accounts and their usage: O(page) reads), never every account.
 */
export const ADMIN_REFRESH_MS = 10_000;

/** The list's orders (the server's `sort`): by email address, A to Z or Z to A. */
export type AccountSort = NonNullable<AdminAccountsQuery['sort']>;

/** What the admin page's parts share: the lists it polls, its actions, and how soon changes apply. */
export interface AdminContext {
  readonly accounts: Ref<AdminAccount[] | undefined>;
  readonly plans: Ref<AdminPlan[] | undefined>;
  /** The next page's cursor, if there is one. */
  readonly next: Ref<string | undefined>;
  readonly asOf: Ref<string | undefined>;
  /** The cursors of the pages before this one; the last is this page's (undefined: the first). */
  readonly cursors: Ref<Array<string | undefined>>;
  /** How the list is ordered: by email address, A to Z (`email`) or Z to A (`-email`). */
  readonly sort: Ref<AccountSort>;
  /** What the list is narrowed to: an email address or its beginning, or an account id ('' for all). */
  readonly search: Ref<string>;
  /** Lists by another order or search, from its first page. */
  setQuery(query: { sort?: AccountSort; search?: string }): void;
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
  const sort = ref<AccountSort>('email');
  const search = ref('');
  const loadError = ref<string>();

  /** This page's query: only the page shown is read (O(page) on the server), never every account. */
  const pageQuery = (): AdminAccountsQuery => {
    const cursor = cursors.value.at(-1);
    const q = search.value.trim();
    return { sort: sort.value, ...(cursor ? { cursor } : {}), ...(q ? { q } : {}) };
  };

  async function load(): Promise<void> {
    const query = pageQuery();
    try {
      const [page, planList] = await Promise.all([
        session.guard(() => admin.listAccounts(query)),
        session.guard(() => admin.listPlans()),
      ]);
      // A slow answer for a page, order or search the admin has since left is not shown.
      if (JSON.stringify(query) !== JSON.stringify(pageQuery())) return;
      // In the server's order (by email, as `sort` asks; an account found by its id first).
      accounts.value = page.accounts;
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

  function setQuery(query: { sort?: AccountSort; search?: string }): void {
    if (query.sort !== undefined) sort.value = query.sort;
    if (query.search !== undefined) search.value = query.search;
    cursors.value = [undefined];
    accounts.value = undefined;
    void polling.now();
  }

  const context: AdminContext = {
    accounts,
    plans,
    next,
    asOf,
    cursors,
    sort,
    search,
    setQuery,
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
