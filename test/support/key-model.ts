/**
 * A model of one account's keys, written from the user API's documented behaviour (docs/keys.md,
 * the OpenAPI descriptions), not from its code: what an owner expects each call to answer, and
 * what `GET /keys` must show after a sequence of calls. Property tests drive the real API and
 * this model side by side; the model is updated from the real answers, so a disagreement is found
 * at the call that caused it.
 *
 * Time: a key rolled with a short grace turns from `expiring` to `expired` by the clock, so every
 * expectation is taken over the interval a call was in flight ([t0, t1], this machine's clock,
 * which the local stack shares) and either status is accepted inside it.
 */

export type StoredStatus = 'pending' | 'active' | 'expiring' | 'revoked';
export type ViewStatus = StoredStatus | 'expired';

export interface ModelKey {
  id: string;
  name: string;
  status: StoredStatus;
  /** Epoch ms; on expiring keys. */
  expiresAt?: number;
  /** The grace was ended by a later roll (its predecessor's): the real expiry is at or before `expiresAt`. */
  endedEarly?: boolean;
  revokedAt?: string;
  replacedBy?: string;
  replaces?: string;
}

/** A key as `GET /keys` lists it. */
export interface KeyView {
  id: string;
  name: string;
  start: string | null;
  status: ViewStatus;
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
  replacedBy?: string;
  count: number;
  lastUsedAt: string | null;
}

export function viewStatus(key: ModelKey, at: number): ViewStatus {
  if (key.status === 'expiring' && key.expiresAt !== undefined && key.expiresAt <= at) return 'expired';
  return key.status;
}

/** The statuses a key may have had while a call was in flight. */
export function statusesDuring(key: ModelKey, t0: number, t1: number): Set<ViewStatus> {
  return new Set([viewStatus(key, t0), viewStatus(key, t1)]);
}

const isLive = (status: ViewStatus) => status === 'active' || status === 'pending' || status === 'expiring';

export class KeyModel {
  readonly keys = new Map<string, ModelKey>();

  constructor(
    /** The plan's `maxKeys` (live keys at once), as `GET /me/plan` reported it; undefined: no limit. */
    readonly maxKeys: number | undefined,
  ) {}

  /** A model of what `GET /keys` shows now: how a run starts after a failed one. */
  static fromList(views: readonly KeyView[], maxKeys: number | undefined): KeyModel {
    const model = new KeyModel(maxKeys);
    for (const view of views) {
      model.keys.set(view.id, {
        id: view.id,
        name: view.name,
        status: view.status === 'expired' ? 'expiring' : view.status,
        ...(view.expiresAt ? { expiresAt: Date.parse(view.expiresAt) } : {}),
        ...(view.revokedAt ? { revokedAt: view.revokedAt } : {}),
        ...(view.replacedBy ? { replacedBy: view.replacedBy } : {}),
      });
    }
    for (const key of model.keys.values()) {
      const next = key.replacedBy ? model.keys.get(key.replacedBy) : undefined;
      if (next) next.replaces = key.id;
    }
    return model;
  }

  liveCount(at: number): number {
    return [...this.keys.values()].filter((key) => isLive(viewStatus(key, at))).length;
  }

  /** Whether one more live key is refused (409 `key_limit_reached`), at t0 and at t1. */
  limitReachedDuring(t0: number, t1: number, freed = (_at: number) => 0): Set<boolean> {
    const { maxKeys } = this;
    if (maxKeys === undefined) return new Set([false]);
    return new Set([t0, t1].map((at) => this.liveCount(at) + 1 - freed(at) > maxKeys));
  }

  /**
   * The live keys a roll of `key` stops counting: the rolled key itself with a grace of 0, and its
   * predecessor if still expiring (a key keeps at most one expiring predecessor).
   */
  freedByRoll(key: ModelKey, graceMs: number, at: number): number {
    const predecessor = key.replaces ? this.keys.get(key.replaces) : undefined;
    const ending = predecessor !== undefined && viewStatus(predecessor, at) === 'expiring';
    return (graceMs === 0 ? 1 : 0) + (ending ? 1 : 0);
  }

  /** Applies a roll the API answered 201 to, at some moment in [t0, t1]. */
  applyRoll(old: ModelKey, next: { id: string; expiresAt: number }, t0: number, t1: number): void {
    const predecessor = old.replaces ? this.keys.get(old.replaces) : undefined;
    if (predecessor && predecessor.status === 'expiring' && (predecessor.expiresAt ?? 0) > t0) {
      // Its grace ended at the roll, or had already run out by then: either way over by t1.
      predecessor.expiresAt = Math.min(predecessor.expiresAt ?? t1, t1);
      predecessor.endedEarly = true;
    }
    old.status = 'expiring';
    old.expiresAt = next.expiresAt;
    old.replacedBy = next.id;
    this.keys.set(next.id, { id: next.id, name: old.name, status: 'active', replaces: old.id });
  }

  /**
   * What `GET /keys` listed (fetched during [t0, t1]) against the model: the same ids, names,
   * statuses, revocation times, successors and expiries. Returns the differences, empty if none.
   */
  differences(views: readonly KeyView[], t0: number, t1: number): string[] {
    const problems: string[] = [];
    const listed = new Map(views.map((view) => [view.id, view]));
    for (const id of listed.keys()) if (!this.keys.has(id)) problems.push(`${id} listed, not in the model`);
    for (const key of this.keys.values()) {
      const view = listed.get(key.id);
      if (!view) {
        problems.push(`${key.id} (${key.status}) missing from GET /keys`);
        continue;
      }
      const allowed = statusesDuring(key, t0, t1);
      if (!allowed.has(view.status)) {
        problems.push(`${key.id} is ${view.status}, expected ${[...allowed].join(' or ')}`);
      }
      if (view.name !== key.name)
        problems.push(`${key.id} is named ${JSON.stringify(view.name)}, not ${JSON.stringify(key.name)}`);
      if (key.status === 'revoked' && view.revokedAt !== (key.revokedAt ?? view.revokedAt)) {
        problems.push(`${key.id} revokedAt ${view.revokedAt}, first revoked at ${key.revokedAt}`);
      }
      if (key.status === 'revoked' && !view.revokedAt) problems.push(`${key.id} revoked without revokedAt`);
      if (view.replacedBy !== key.replacedBy) {
        problems.push(`${key.id} replacedBy ${view.replacedBy}, expected ${key.replacedBy}`);
      }
      if (key.replacedBy && !listed.has(key.replacedBy)) {
        problems.push(`${key.id} was rolled, its successor ${key.replacedBy} is not listed`);
      }
      if (key.expiresAt !== undefined) {
        const real = view.expiresAt ? Date.parse(view.expiresAt) : Number.NaN;
        const ok = key.endedEarly ? real <= key.expiresAt : real === key.expiresAt;
        if (!ok) {
          problems.push(
            `${key.id} expiresAt ${view.expiresAt}, expected ${key.endedEarly ? 'at or before ' : ''}${new Date(key.expiresAt).toISOString()}`,
          );
        }
      }
    }
    return problems;
  }
}
