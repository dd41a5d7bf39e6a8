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

  return { config, api, me, loadMe, keys, keysError, refreshKeys, guard };
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
