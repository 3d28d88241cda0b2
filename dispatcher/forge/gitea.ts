// The forge port on Gitea's API (Forgejo's grew from it: the same paths for statuses, pulls and
// comments). Calls are a few per action, off the dispatch path, so axios carries them. The bot's
// token comes from a file and travels only in the Authorization header.
import axios, { AxiosError, type AxiosInstance } from "axios";
import { ForgeApiError } from "../errors.js";
import type { ForgePort, ForgeStatus } from "../core/ports.js";
import type { MergedPullRequest } from "../core/forge-approval.js";

export interface GiteaOptions {
  /** the forge's base URL, e.g. http://127.0.0.1:3000 */
  url: string;
  /** owner/name of the ops repo */
  repo: string;
  token: string;
  timeoutMs?: number;
}

/** What `doctor` asks of the forge besides the port. */
export interface GiteaInspect {
  /** the token's user (login, site admin?) when the token has a user scope; undefined when it may not read it (403) */
  whoami(): Promise<{ login: string; isAdmin: boolean } | undefined>;
  /** what the token's user may do on the ops repo */
  permissions(): Promise<{ admin: boolean; push: boolean; pull: boolean }>;
  /** the pull request merged as `commit`, with its reviews (the forge gate); undefined for a direct push */
  mergedPullRequestReviews(commit: string): Promise<MergedPullRequest | undefined>;
  /** whether a user of this name exists (asked anonymously: the bot's token has no user scope); undefined when the forge will not say */
  userExists(name: string): Promise<boolean | undefined>;
  /** the repo's webhooks (needs a repo admin's token); undefined when the token may not list them */
  hooks(): Promise<{ id: number; url: string; active: boolean; events: string[] }[] | undefined>;
}

interface Comment {
  id: number;
  body: string;
}

export function failure(what: string, err: unknown): ForgeApiError {
  if (err instanceof AxiosError) {
    const status = err.response?.status;
    const said = typeof err.response?.data === "object" && err.response?.data !== null ? (err.response.data as { message?: unknown }).message : undefined;
    const detail = status === undefined ? (err.code ?? err.message) : `HTTP ${status}${typeof said === "string" && said ? `: ${said}` : ""}`;
    return new ForgeApiError(`forge: ${what} failed: ${detail}`, status, { cause: err });
  }
  return new ForgeApiError(`forge: ${what} failed: ${(err as Error).message}`, undefined, { cause: err });
}

/** Gitea's API with the bot's token: in the Authorization header only, never following a redirect. */
export function giteaHttp(o: Pick<GiteaOptions, "url" | "token" | "timeoutMs">): AxiosInstance {
  return axios.create({
    baseURL: `${o.url.replace(/\/+$/, "")}/api/v1`,
    timeout: o.timeoutMs ?? 10_000,
    headers: { Authorization: `token ${o.token}`, Accept: "application/json" },
    // no redirects: a token never follows one to another host
    maxRedirects: 0,
  });
}

/** A call's answer, or a ForgeApiError saying what failed. */
export async function giteaCall<T>(what: string, run: () => Promise<{ data: T }>): Promise<T> {
  try {
    return (await run()).data;
  } catch (err) {
    throw failure(what, err);
  }
}

/**
 * The comment on issue or pull request `n` of `repo` whose body starts with `marker` is set to
 * `body` (made when there is none): one comment per marker, however often it is sent.
 */
export async function upsertMarkedComment(http: AxiosInstance, repo: string, n: number, marker: string, body: string): Promise<"created" | "updated"> {
  const base = `/repos/${repo}/issues`;
  let ours: Comment | undefined;
  for (let page = 1; !ours; page++) {
    const batch = await giteaCall(`listing the comments of #${n} of ${repo}`, () => http.get<Comment[]>(`${base}/${n}/comments`, { params: { page, limit: 50 } }));
    ours = batch.find((c) => c.body.startsWith(marker));
    if (batch.length < 50) break;
  }
  if (ours) {
    const id = ours.id;
    if (ours.body !== body) await giteaCall(`updating comment ${id} on #${n} of ${repo}`, () => http.patch(`${base}/comments/${id}`, { body }));
    return "updated";
  }
  await giteaCall(`commenting on #${n} of ${repo}`, () => http.post(`${base}/${n}/comments`, { body }));
  return "created";
}

export function createGiteaForge(o: GiteaOptions): ForgePort & GiteaInspect {
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(o.repo)) throw new ForgeApiError(`forge.repo "${o.repo}": expected owner/name, e.g. ops/ops`, undefined);
  const http = giteaHttp(o);
  const repo = `/repos/${o.repo}`;

  const call = giteaCall;


  return {
    async setStatus(commit: string, s: ForgeStatus): Promise<void> {
      await call(`setting status ${s.context}=${s.state} on ${commit.slice(0, 12)}`, () => http.post(`${repo}/statuses/${commit}`, { state: s.state, context: s.context, description: s.description }));
    },
    async mergedPullRequest(commit: string): Promise<number | undefined> {
      try {
        const pr = (await http.get<{ number: number; merged: boolean }>(`${repo}/commits/${commit}/pull`)).data;
        return pr.merged ? pr.number : undefined;
      } catch (err) {
        // 404: no pull request was merged as this commit (a direct push)
        if (err instanceof AxiosError && err.response?.status === 404) return undefined;
        throw failure(`finding the pull request merged as ${commit.slice(0, 12)}`, err);
      }
    },
    upsertComment: (pr: number, marker: string, body: string) => upsertMarkedComment(http, o.repo, pr, marker, body),
    async mergedPullRequestReviews(commit: string): Promise<MergedPullRequest | undefined> {
      let pr: { number: number; merged: boolean; user: { login: string }; head: { sha: string } };
      try {
        pr = (await http.get<typeof pr>(`${repo}/commits/${commit}/pull`)).data;
      } catch (err) {
        if (err instanceof AxiosError && err.response?.status === 404) return undefined;
        throw failure(`finding the pull request merged as ${commit.slice(0, 12)}`, err);
      }
      if (!pr.merged) return undefined;
      const reviews: { user: { login: string } | null; state: string; commit_id: string; dismissed: boolean }[] = [];
      for (let page = 1; ; page++) {
        const batch = await call(`listing the reviews of pull request #${pr.number}`, () => http.get<typeof reviews>(`${repo}/pulls/${pr.number}/reviews`, { params: { page, limit: 50 } }));
        reviews.push(...batch);
        if (batch.length < 50) break;
      }
      return {
        number: pr.number,
        author: pr.user.login,
        head: pr.head.sha,
        reviews: reviews.filter((r) => r.user).map((r) => ({ user: r.user!.login, state: r.state, commit: r.commit_id, dismissed: r.dismissed })),
      };
    },
    async userExists(name: string) {
      try {
        // no token: a profile is public unless the forge requires signing in to see it
        await axios.get(`${o.url.replace(/\/+$/, "")}/api/v1/users/${encodeURIComponent(name)}`, { timeout: o.timeoutMs ?? 10_000, maxRedirects: 0 });
        return true;
      } catch (err) {
        if (err instanceof AxiosError && err.response?.status === 404) return false;
        if (err instanceof AxiosError && (err.response?.status === 401 || err.response?.status === 403)) return undefined;
        throw failure(`looking up user ${name}`, err);
      }
    },
    async whoami() {
      try {
        const u = (await http.get<{ login: string; is_admin: boolean }>("/user")).data;
        return { login: u.login, isAdmin: u.is_admin };
      } catch (err) {
        if (err instanceof AxiosError && err.response?.status === 403) return undefined;
        throw failure("reading the token's user", err);
      }
    },
    async permissions() {
      const r = await call(`reading ${o.repo}`, () => http.get<{ permissions?: { admin: boolean; push: boolean; pull: boolean } }>(repo));
      return r.permissions ?? { admin: false, push: false, pull: false };
    },
    async hooks() {
      try {
        const hooks = (await http.get<{ id: number; active: boolean; events: string[]; config: { url?: string } }[]>(`${repo}/hooks`)).data;
        return hooks.map((h) => ({ id: h.id, url: h.config.url ?? "", active: h.active, events: h.events }));
      } catch (err) {
        if (err instanceof AxiosError && (err.response?.status === 403 || err.response?.status === 404)) return undefined;
        throw failure(`listing the webhooks of ${o.repo}`, err);
      }
    },
  };
}
