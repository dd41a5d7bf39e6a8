import { type Ref, ref } from 'vue';
import { describeError, SessionExpiredError } from './api';
import type { Session } from './session';

/** The line at the top of a page that says what an action did, or why it failed. */
export interface Notice {
  tone: 'success' | 'error';
  text: string;
}

export interface Actions {
  readonly notice: Ref<Notice | undefined>;
  /** What an action is running for (a key id, an account id, a form): its buttons wait meanwhile. */
  readonly busy: Ref<string | undefined>;
  /**
   * Runs `call` for `id`, clearing the notice first. A failure becomes the error notice and
   * undefined, unless `recover` takes it (returns true); an ended session shows nothing here, as it
   * already took the user back to the sign-in form.
   */
  act<T>(id: string, call: () => Promise<T>, recover?: (error: unknown) => boolean): Promise<T | undefined>;
  succeeded(text: string): void;
}

/** One action at a time, per page: the keys page and the admin page run theirs through this. */
export function useActions(session: Session): Actions {
  const notice = ref<Notice>();
  const busy = ref<string>();

  async function act<T>(
    id: string,
    call: () => Promise<T>,
    recover?: (error: unknown) => boolean,
  ): Promise<T | undefined> {
    busy.value = id;
    notice.value = undefined;
    try {
      return await session.guard(call);
    } catch (error) {
      if (!recover?.(error) && !(error instanceof SessionExpiredError)) {
        notice.value = { tone: 'error', text: describeError(error) };
      }
      return undefined;
    } finally {
      busy.value = undefined;
    }
  }

  function succeeded(text: string): void {
    notice.value = { tone: 'success', text };
  }

  return { notice, busy, act, succeeded };
}
