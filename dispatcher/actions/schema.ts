import * as z from "zod";

/** Action ids are file basenames: safe as git paths, Nomad meta and variable paths. */
export const ACTION_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const SECRET_NAME = /^[A-Z][A-Z0-9_]*$/;
/** The mount aliases every dispatcher knows (at /mnt/<alias>); [mounts] in the config adds others. */
export const MOUNTS = ["ssh", "gpg", "sops"] as const;
/** Every subset of `aliases` (the parents' mount sets when the config lists none). */
export function allMountSets(aliases: readonly string[] = MOUNTS): string[][] {
  return [...Array(2 ** aliases.length).keys()].map((bits) => aliases.filter((_, i) => bits & (1 << i)));
}
/** A mount alias: lower-case, digits, - (the parent of a set is <kind>-<aliases joined by ->). */
export const MOUNT_ALIAS = /^[a-z][a-z0-9-]{0,31}$/;
/** 24 h: no action runs longer, and no runner token lives longer (plus the grace). */
export const MAX_TIMEOUT_MINUTES = 1440;
/** A runner class names a Nomad node pool: lower-case, no dots (parent ids are <kind>.<class>-<mounts>). */
export const CLASS_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
export const SIDECAR_FORMULAS = ["reproduce", "triage", "verify"] as const;

export const actionSchema = z
  .strictObject({
    id: z.string().regex(ACTION_ID),
    formula: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
    context: z.string().trim().min(1),
    secrets: z.array(z.string().regex(SECRET_NAME)),
    mounts: z.array(z.string().regex(MOUNT_ALIAS)).default([]),
    model: z.string().min(1).optional(),
    tools: z.array(z.string().min(1)).optional(),
    // bounded: the runner role's token_explicit_max_ttl (vault/roles) is this plus the token grace
    timeout_minutes: z.number().int().positive().max(MAX_TIMEOUT_MINUTES).optional(),
    dispatch_mode: z.enum(["pr", "direct"]).optional(),
    blast_radius: z.enum(["low", "medium", "high"]).optional(),
    kind: z.enum(["runner", "sidecar"]).default("runner"),
    /** a runner class from the dispatcher's config: its children run in the node pool of that name */
    class: z.string().regex(CLASS_NAME).optional(),
    issue: z.number().int().positive().optional(),
    project: z.string().min(1).optional(),
  });

export type Action = z.infer<typeof actionSchema>;
/** a mount alias: ssh, gpg, sops, or one of [mounts] in the config */
export type Mount = string;

/** An action file as found in the ops repo at a commit. */
export interface ActionFile {
  /** repo-relative path, e.g. vault/actions/release.toml */
  path: string;
  /** the basename without .toml */
  id: string;
  /** git blob id of the file's content */
  sha: string;
}

/** What the ops repo knows that a single file cannot: used to check references. */
export interface ActionCatalog {
  /** secret names the dispatcher may grant (allowlist ∩ policies present) */
  secrets: ReadonlySet<string>;
  /** formula names with formulas/<name>.sh at the same commit */
  formulas: ReadonlySet<string>;
  /** where the formulas are, when not in the ops repo: "the factory repository <url> at <commit>" */
  formulasWhere?: string;
  /** mount aliases the cluster offers (in the default node pool) */
  mounts: ReadonlySet<string>;
  /** the mount aliases the dispatcher's config knows; absent: not checked (offline validate) */
  configuredMounts?: ReadonlySet<string>;
  /** the mount sets with a parent (keys: sorted aliases joined by ","); absent: every set */
  mountSets?: ReadonlySet<string>;
  /** configured runner classes → mount aliases their node pool offers; absent: classes are not checked (offline validate) */
  classes?: ReadonlyMap<string, ReadonlySet<string>>;
  /** which secrets each formula may be granted, when the dispatcher's config says (absent: any known secret) */
  formulaSecrets?: FormulaSecrets;
  /** which mounts each formula may get, when the dispatcher's config says (absent: any offered mount) */
  formulaMounts?: FormulaMounts;
}

/** The formula → secrets allowlist of the dispatcher's config, outside the ops repo. */
export interface FormulaSecrets {
  allowed: ReadonlyMap<string, ReadonlySet<string>>;
  /** where it lives, for messages: e.g. "[formula_secrets] in /etc/dispatcher.toml" */
  source: string;
}

/** The formula → mounts allowlist ([formula_mounts]): a mount's key files are a grant like a secret. */
export type FormulaMounts = FormulaSecrets;

export type ParsedAction =
  | { ok: true; file: ActionFile; action: Action }
  | { ok: false; file: ActionFile; problems: string[] };
