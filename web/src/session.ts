import { type InjectionKey, inject, onBeforeUnmount, onMounted, type Ref, ref } from 'vue';
import {
  createUserApi,
  describeError,
  type KeyView,
  type Me,
  SessionExpiredError,
  type UserApi,
} from './api';
import { currentIdToken, endSession } from './auth';
import type { WebConfig } from './config';

/** Shown above the sign-in form after a session ended on its own (expired, revoked, refused). */
export const signInNotice = ref<string>();

/** A key action the API refused for want of a recent sign-in, to finish once the user signed in again. */
export type PendingMint =
  | { readonly action: 'create'; readonly name: string }
  | { readonly action: 'reveal'; readonly keyId: string }
  | {
      readonly action: 'roll';
      readonly keyId: string;
      readonly start: string | null;
      readonly graceSeconds?: number;
    };

/**
 * What the user asked for before signing in again, and as whom. Kept in memory only, outside the
 * signed-in pages (which the sign-in form replaces meanwhile), so what they typed is not lost; it
 * holds no secret. Taken once by the keys page after the sign-in (takePendingMint).
 */
export const reauthentication = ref<{ email: string; pending: PendingMint }>();

/** The action to finish, once, if the user who signed in is the one who asked for it. */
export function takePendingMint(email: string): PendingMint | undefined {
  const waiting = reauthentication.value;
  reauthentication.value = undefined;
  if (!waiting || waiting.email.toLowerCase() !== email.toLowerCase()) return undefined;
  return waiting.pending;
}

/** What the signed-in pages share: the API client, the account and its keys. */
export interface Session {
  readonly config: WebConfig;
  readonly api: UserApi;
  /** The signed-in account (`GET /me`); undefined until first loaded. */
  readonly me: Ref<Me | undefined>;
  /**
   * Loads the account once (`GET /me`, which also finishes a sign-up whose trigger never ran);
   * every caller shares the first answer, and a failed load is tried again by the next call.
   */
  loadMe(): Promise<Me>;
  /** The account's keys; undefined until first loaded. */
  readonly keys: Ref<KeyView[] | undefined>;
  /** Why the last refresh of the keys failed, if it did. */
  readonly keysError: Ref<string | undefined>;
  refreshKeys(): Promise<void>;
  /**
   * Runs an API call; if the session turns out to be over, signs out (back to the sign-in form,
   * with a notice) instead of showing an error.
   */
  guard<T>(call: () => Promise<T>): Promise<T>;
  /**
   * Signs out to the sign-in form, `email` filled in, saying why; after the sign-in the keys page
   * finishes `pending` (once). Minting a key needs a recent sign-in (ReauthenticationRequiredError).
   */
  signInAgain(email: string, pending: PendingMint, why: string): Promise<void>;
}

export const sessionKey: InjectionKey<Session> = Symbol('session');

export function createSession(config: WebConfig): Session {
  const api = createUserApi(config.userApi, currentIdToken);
  const keys = ref<KeyView[]>();
  const keysError = ref<string>();
  const me = ref<Me>();
  let loadingMe: Promise<Me> | undefined;
  let ending = false;

  async function guard<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof SessionExpiredError && !ending) {
        ending = true;
        signInNotice.value = error.message;
        await endSession();
      }
      throw error;
    }
  }

  async function refreshKeys(): Promise<void> {
    try {
      keys.value = (await guard(() => api.listKeys())).keys;
      keysError.value = undefined;
    } catch (error) {
      if (!(error instanceof SessionExpiredError)) keysError.value = describeError(error);
    }
  }

  function loadMe(): Promise<Me> {
    loadingMe ??= guard(() => api.me()).then(
      (answer) => {
        me.value = answer;
        return answer;
      },
      (error: unknown) => {
        loadingMe = undefined;
        throw error;
      },
    );
    return loadingMe;
  }

  async function signInAgain(email: string, pending: PendingMint, why: string): Promise<void> {
    ending = true;
    reauthentication.value = { email, pending };
    signInNotice.value = why;
    await endSession();
  }

  return { config, api, me, loadMe, keys, keysError, refreshKeys, guard, signInAgain };
}

export function useSession(): Session {
  const session = inject(sessionKey);
  if (!session) throw new Error('useSession() outside a signed-in page');
  return session;
}

/**
 * Calls `task` now and then every `intervalMs` while the component is mounted and the tab is
 * visible (a hidden tab does not poll; it catches up as soon as it is shown again). Runs never
 * overlap; `now()` during a run starts another right after it, so its caller sees fresh data.
 */
export function usePolling(task: () => Promise<void>, intervalMs: number): { now(): Promise<void> } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let again: Promise<void> | undefined;
  let active = false;

  const schedule = () => {
    clearTimeout(timer);
    if (active && document.visibilityState === 'visible') timer = setTimeout(run, intervalMs);
  };
  function run(): Promise<void> {
    if (running) {
      const rerun = () => {
        again = undefined;
        return run();
      };
      again ??= running.then(rerun, rerun);
      return again;
    }
    clearTimeout(timer);
    running = task().finally(() => {
      running = undefined;
      schedule();
    });
    return running;
  }
  const onVisibility = () => {
    if (document.visibilityState === 'visible') void run();
    else clearTimeout(timer);
  };

  onMounted(() => {
    active = true;
    document.addEventListener('visibilitychange', onVisibility);
    void run();
  });
  onBeforeUnmount(() => {
    active = false;
    clearTimeout(timer);
    document.removeEventListener('visibilitychange', onVisibility);
  });
  return { now: run };
}
