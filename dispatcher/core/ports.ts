// The engine ports. Core depends on these types only; each adapter module implements one.
import type { EntryKind } from "../actions/names.js";
import type { ForgeReport } from "./forge.js";
import type { MergedPullRequest } from "./forge-approval.js";

export interface DispatchRequest {
  /** parameterized parent job: "runner" or "sidecar" */
  job: string;
  meta: Record<string, string>;
  /** becomes the task's dispatch_payload file; carries the verdict nonce and the wrapping token (contract.ts) */
  payload?: string;
  idempotencyToken: string;
}

export interface DispatchedJob {
  jobId: string;
  evalId: string;
}

export type AllocClientStatus = "pending" | "running" | "complete" | "failed" | "lost" | "unknown";

export interface AllocationState {
  id: string;
  node: string;
  clientStatus: AllocClientStatus;
  /** exit code from the task's Terminated event, when it has one */
  exitCode?: number;
  /** the latest event message that explains a failure (driver failure, OOM, …) */
  failureMessage?: string;
  startedAt?: string;
  finishedAt?: string;
  createIndex: number;
}

export interface JobPlacement {
  allocations: AllocationState[];
  /** why the scheduler could not place the job, when an evaluation says so */
  blockedReason?: string;
  /** the job itself is gone (purged, or garbage-collected before any allocation was seen) */
  gone?: boolean;
  /** with no allocation: how many evaluations the job has (0: the scheduler never saw it, nomad#26655) */
  evaluations?: number;
  /** raft index for the next blocking query */
  index: number;
}

export interface NomadPort {
  dispatch(req: DispatchRequest): Promise<DispatchedJob>;
  /** blocking query on the job's allocations: returns when something changed past `index` or after `waitMs` */
  watchJob(jobId: string, index: number, waitMs: number, signal?: AbortSignal): Promise<JobPlacement>;
  /** a task's log; with `maxBytes`, only its last maxBytes, never more held in memory */
  readLog(allocId: string, task: string, type: "stdout" | "stderr", maxBytes?: number): Promise<string>;
  stopJob(jobId: string): Promise<void>;
  /** ask the scheduler to evaluate the job again (needs submit-job) */
  evaluateJob(jobId: string): Promise<void>;
  /** remove a finished child from Nomad for good (needs submit-job) */
  purgeJob(jobId: string): Promise<void>;
  /** host volumes offered by ready client nodes of a node pool ("default" when absent): name → host path (the first node's, by node id) */
  hostVolumes(pool?: string): Promise<Map<string, string>>;
  /** what decides a parent's children (command, user, driver, volumes, …), as pinning compares it; undefined when absent */
  parentSpec(jobId: string): Promise<Record<string, unknown> | undefined>;
  /** a job's identity for ledger verification; undefined when Nomad does not know it */
  childJob(jobId: string): Promise<ChildIdentity | undefined>;
}

export interface ChildIdentity {
  jobId: string;
  /** ParentID: empty for a job that was not dispatched */
  parent: string;
  namespace: string;
  meta: Record<string, string>;
  /** the dispatch payload as sent (decoded from Nomad's base64) */
  payload?: string;
  /** the job as a pin holds a parent (nomad adapter: pinnedSpecOf), to compare a child with its parent's pin */
  spec?: Record<string, unknown>;
}

/** A dispatched child of a parameterized job, as Nomad lists it. */
export interface ChildJob {
  jobId: string;
  /** the parameterized parent: runner or sidecar */
  parent: string;
  meta: Record<string, string>;
  submittedAt: Date;
}

export interface WrappedToken {
  /** single-use wrapping token handed to the job */
  wrappingToken: string;
  /** accessor of the wrapped (runner) token, for revocation after the run */
  accessor: string;
  policies: string[];
}

export interface VaultPort {
  /** of `policies`, those that do not exist */
  missingPolicies(policies: string[]): Promise<string[]>;
  mintWrapped(req: {
    policies: string[];
    ttlSeconds: number;
    meta: Record<string, string>;
  }): Promise<WrappedToken>;
  /**
   * revoke the runner token behind `accessor`, only if it was made on the runner role for
   * `actionId`; a foreign accessor throws ForeignToken and is left alone
   */
  revokeAccessor(accessor: string, actionId: string): Promise<void>;
}

/** What a write did: the new tip, paths that already existed (never overwritten), paths that cannot be written. */
export interface WriteOutcome {
  commit: string;
  /** the tip the commit was built on (its parent); absent when nothing was written */
  base?: string;
  skipped: string[];
  /** a result under a symlink or a file in the repo: isolated, the others landed */
  failed?: WriteFailure[];
  /** pushes refused by a concurrent writer before this one landed */
  rejections?: number;
}

export interface WriteFailure {
  path: string;
  reason: string;
}

export interface RepoFile {
  path: string;
  content: Buffer;
}

export type SignatureStatus = "good" | "unknown_key" | "unsigned" | "bad" | "unverifiable";

export interface CommitSignature {
  commit: string;
  /** good: signed by a key of the allowed-signers file; unknown_key: a valid signature by another key */
  status: SignatureStatus;
  /** the allowed signer's principal (good signatures only) */
  signer?: string;
  /** the signing key's fingerprint */
  key?: string;
  /** values of its "Approves:" trailers, e.g. vault/actions/x.toml@<blob> */
  approves: string[];
}

/** Who changed a path last, and the commits after that one (approvals) up to the commit read. */
export interface Provenance {
  path: string;
  /** undefined when no commit changed the path */
  last?: CommitSignature;
  /** the commits after `last` up to the commit read (first parents) that carry Approves trailers, newest first */
  later: CommitSignature[];
  /** how many first-parent commits came after `last` up to the commit read (0: `last` is it) */
  distance?: number;
}

/**
 * An entry of a directory at a commit: its object id, and a blob's size in bytes when known.
 * `kind` absent: a file. `notUtf8`: the name's bytes are not UTF-8; `path` shows them replaced
 * (U+FFFD) and names no entry, so it is never read by it.
 */
export type ListedFile = { path: string; sha: string; size?: number; kind?: EntryKind; notUtf8?: true };

/** A directory's entries; `truncated`: it holds more than a listing reads (the rest is not read). */
export type Listing = readonly ListedFile[] & { readonly truncated?: boolean };

export type FileChange = ListedFile | { path: string; deleted: true };

/** What a pass already knows of the remote's tip, so it asks less. */
export interface SyncHint {
  /** a tip confirmed (fetched, pushed or checked) this recently is used without asking again */
  maxAgeMs?: number;
  /**
   * the tip a signed push webhook named: our own push's needs no git at all, another's is fetched
   * without asking the remote first; the fetched ref, never this, is the tip
   */
  pushed?: string;
}

export interface OpsRepoPort {
  /** the commit that last changed `path` at `commit`, and those after it, with their signatures */
  /**
   * who last changed `path` at `commit` along first parents (a merge judged against its first
   * parent); with `outside`, anything not under that folder (`path` is then its label)
   */
  provenance(commit: string, path: string, allowedSignersFile: string, outside?: string): Promise<Provenance>;
  /** commits whose signature this process has checked so far (each once) */
  signatureChecks?(): number;
  /** fetch the remote; returns the commit at the tip of the tracked branch */
  sync(opts?: SyncHint): Promise<string>;
  /**
   * the direct children of `dir` at `commit`, of every kind (never a walk below them), with each
   * blob's size in bytes, so a huge file can be refused before it is read; at most a capped
   * number of entries (`truncated` beyond)
   */
  listFiles(commit: string, dir: string): Promise<Listing>;
  /**
   * what changed among the direct children of `dir` from one commit to the other: entries added
   * or changed (with their ids, kinds and sizes) and deleted ones; undefined when `from` is not
   * known here or the change is too large (list afresh)
   */
  diffFiles(from: string, to: string, dir: string): Promise<FileChange[] | undefined>;
  readFile(commit: string, path: string): Promise<Buffer | undefined>;
  /**
   * `from` is `to` or one of its ancestors, and nothing outside `dir` differs between them: an
   * action runs the same code at either
   */
  sameCodeAs(from: string, to: string, dir: string): Promise<boolean>;
  /**
   * commit the files and push, rebasing on a rejected push; a path that already exists
   * upstream is never overwritten and is returned in `skipped`.
   */
  writeFiles(files: RepoFile[], message: string): Promise<WriteOutcome>;
}

export interface Clock {
  now(): Date;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export type LedgerState = "claimed" | "dispatched" | "finished" | "recorded";

/** One action's entry in the ledger: who holds it and how far it got. */
export interface LedgerEntry {
  id: string;
  state: LedgerState;
  owner: string;
  attempt: number;
  actionSha: string;
  commit: string;
  jobId?: string;
  /** accessor of the runner token, so whoever finishes the action can revoke it */
  accessor?: string;
  dispatchedAt?: string;
  /** the result JSON, kept until it is pushed */
  result?: string;
  /** when its child was purged from Nomad (the purge schedule, kept in the ledger, is done with it) */
  purgedAt?: string;
  updatedAt: string;
  /** check-and-set index */
  index: number;
}

export type LedgerFields = Omit<LedgerEntry, "id" | "index">;

/** What a replica says of itself with each heartbeat (`status --instances`). */
export interface InstanceInfo {
  inFlight: number;
  /** stopping: claims nothing new, finishes what it holds */
  draining: boolean;
  version: string;
}

export interface InstanceBeat extends Partial<InstanceInfo> {
  instance: string;
  seenAt: Date;
  /** check-and-set index of the heartbeat read */
  index?: number;
}

export interface LedgerPort {
  /** ids of all entries (one call) */
  list(): Promise<Set<string>>;
  get(id: string): Promise<LedgerEntry | undefined>;
  /** create only if absent (a claim: a child's start waits on it); undefined when another writer got there first */
  create(id: string, fields: LedgerFields): Promise<LedgerEntry | undefined>;
  /** check-and-set on entry.index; undefined when the entry changed underneath. `urgent`: a child's start waits on it */
  update(entry: LedgerEntry, changes: Partial<LedgerFields>, opts?: { urgent?: boolean }): Promise<LedgerEntry | undefined>;
  /** record that `instance` is alive now */
  heartbeat(instance: string, at: Date, info?: InstanceInfo): Promise<void>;
  /** when `instance` last said it was alive */
  lastSeen(instance: string): Promise<Date | undefined>;
  /** every replica that ever beat under this ledger, with what it said last */
  instances(): Promise<InstanceBeat[]>;
  /** every entry's id and when it was last written (one listing, contents not read): the retention sweep's candidates and the ledger's size */
  written(): Promise<{ id: string; writtenAt: Date }[]>;
  /** removes an entry as read (check-and-set on entry.index): false when it changed meanwhile */
  remove(entry: LedgerEntry): Promise<boolean>;
  /** removes a heartbeat as read (check-and-set on beat.index): false when it beat again meanwhile */
  forgetInstance(beat: InstanceBeat): Promise<boolean>;
}

/**
 * A place under the limits replicas share (core/limits.ts): the lock of a serialization key
 * (`lock/formula:release`) or one of max_in_flight's slots (`slot/0` … `slot/<max − 1>`). Its
 * lease is its owner's heartbeat.
 */
export interface Place {
  name: string;
  owner: string;
  /** the owner's process: a place an earlier life of the same instance left is free */
  session: string;
  /** the action holding it */
  action: string;
  since: string;
  /** when the action's child has ended at the latest (placement deadline, timeout, grace): a dead owner's orphan keeps its place no longer */
  until: string;
  /** a lock's: the replica that waits for it next (the holder hands it over when it frees it) */
  next?: string;
  /** check-and-set index */
  index: number;
}

export type PlaceFields = Omit<Place, "name" | "index">;

/** Places in the ledger's store, every write a check-and-set. */
export interface PlacesPort {
  get(name: string): Promise<Place | undefined>;
  /** create only if absent; undefined when another writer holds it */
  create(name: string, fields: PlaceFields): Promise<Place | undefined>;
  /** check-and-set on place.index (a take-over); undefined when it changed underneath */
  replace(place: Place, fields: PlaceFields): Promise<Place | undefined>;
  /** check-and-set delete; false when it changed underneath (someone took it over) */
  remove(place: Place): Promise<boolean>;
  /** the names held under `lock/` or `slot/` (one listing, no contents) */
  list(kind: "lock" | "slot"): Promise<string[]>;
}

/**
 * Push webhook deliveries seen lately, in the ledger's store: every replica behind one ingress
 * answers a replayed delivery the same way (server/webhook.ts).
 */
export interface DeliveriesPort {
  /**
   * records `key` as seen `at` (check-and-set create): true for the one call that recorded it; a
   * record written before `expiredBefore` is taken over (check-and-set) as if absent
   */
  first(key: string, at: Date, expiredBefore: Date): Promise<boolean>;
  /** removes the records written before `before` (check-and-set: one taken over meanwhile stays); how many */
  sweep(before: Date): Promise<number>;
}

/** A commit status's state, as Gitea/Forgejo (and GitHub) name them. */
export type ForgeStatusState = "pending" | "success" | "failure" | "error";

export interface ForgeStatus {
  state: ForgeStatusState;
  /** e.g. dispatcher/<id>: one status line per action on a commit */
  context: string;
  /** one line */
  description: string;
}

/** The forge hosting the ops repo (Gitea/Forgejo): where results are reported to people. */
export interface ForgePort {
  /** set (or replace, by context) a commit status on `commit` */
  setStatus(commit: string, status: ForgeStatus): Promise<void>;
  /** the number of the pull request whose merge made `commit`; undefined when it came by a direct push */
  mergedPullRequest(commit: string): Promise<number | undefined>;
  /** create the comment carrying `marker` on the pull request, or update the one that does */
  upsertComment(pr: number, marker: string, body: string): Promise<"created" | "updated">;
}

/** What the forge reports read of the ops repo's history (the dispatcher's clone). */
export interface RepoHistoryPort {
  /**
   * the commit that last changed `path` at or before `commit`, along first parents (a merge, not
   * the branch's commit); with `outside`, anything not under that folder (`path` is then unused)
   */
  lastChange(commit: string, path: string, outside?: string): Promise<string | undefined>;
  /** `path` at the remote-tracking tip of the branch (our own push moved it); undefined when absent */
  readAtTip(path: string): Promise<Buffer | undefined>;
}

/** Where unsent forge reports wait (they outlive a forge outage and a restart). */
export interface ForgeOutboxPort {
  load(): ForgeReport[];
  save(reports: readonly ForgeReport[]): void;
}

/** What the forge gate ([approvals] provider = "forge") reads: the ops repo's history and the forge's pull requests. */
export interface ForgeGatePort {
  lastChange: RepoHistoryPort["lastChange"];
  /** the pull request whose merge made `commit`, with its author, merged head and reviews; undefined for a direct push */
  mergedPullRequestReviews(commit: string): Promise<MergedPullRequest | undefined>;
}

/** An open issue of a project's repo on the forge, as the issue loop reads it. */
export interface ForgeIssue {
  number: number;
  title: string;
  labels: string[];
}

/** The latest time a label was added to an issue: its event (the forge's timeline entry) is part of a run's key. */
export interface LabelEvent {
  /** the forge's id of the timeline entry (unique on the forge): a label added again gets a new one */
  id: number;
  at: string;
}

/**
 * The forge's issues (Gitea/Forgejo): what starts sidecars and where their outcome goes. Every
 * call names the repo (`owner/name`): each project's issues live in its own.
 */
export interface IssueForgePort {
  /** open issues (no pull requests) carrying `label` */
  openIssuesWithLabel(repo: string, label: string): Promise<ForgeIssue[]>;
  /** the last time `label` was added to the issue; undefined when the timeline shows none */
  labelAdded(repo: string, issue: number, label: string): Promise<LabelEvent | undefined>;
  /** adds labels to the issue (each made on the repo first when it has none of that name) */
  addLabels(repo: string, issue: number, labels: string[]): Promise<void>;
  /** removes a label from the issue (absent: nothing to do) */
  removeLabel(repo: string, issue: number, label: string): Promise<void>;
  /** create the comment carrying `marker` on the issue, or update the one that does */
  upsertIssueComment(repo: string, issue: number, marker: string, body: string): Promise<"created" | "updated">;
}

/**
 * The factory repository (formulas.factory_remote) at the commit the config pins: the formulas an
 * action may name there. The pin is the approval of that code; a push to the factory changes nothing.
 */
export interface FactoryPort {
  /** names with formulas/<name>.sh at the pinned commit */
  formulas(): Promise<ReadonlySet<string>>;
  /** for messages: "the factory repository <url> at <commit>" */
  where: string;
}
