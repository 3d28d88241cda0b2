// The issue port on Gitea's API (Forgejo's has the same paths): issues by label, the label's
// timeline entries, labels on and off, one comment per marker. The bot's token travels only in
// the Authorization header (giteaHttp).
import { AxiosError } from "axios";
import type { ForgeIssue, IssueForgePort, LabelEvent } from "../core/ports.js";
import { failure, giteaCall, giteaHttp, upsertMarkedComment } from "./gitea.js";

interface Label {
  id: number;
  name: string;
}

/** a timeline entry of Gitea's: a label's is type "label", body "1" when added, "" when removed */
interface TimelineEntry {
  id: number;
  type: string;
  body: string;
  created_at: string;
  label?: { name: string } | null;
}

const PAGE = 50;
/** the colour of labels the dispatcher makes (progress and outcome labels a repo does not have yet) */
const NEW_LABEL_COLOR = "#c5def5";

export function createGiteaIssues(o: { url: string; token: string; timeoutMs?: number }): IssueForgePort {
  const http = giteaHttp(o);
  const path = (repo: string) => `/repos/${repo}`;

  async function pages<T>(what: string, url: string, params: Record<string, string> = {}): Promise<T[]> {
    const all: T[] = [];
    for (let page = 1; ; page++) {
      const batch = await giteaCall(what, () => http.get<T[]>(url, { params: { ...params, page, limit: PAGE } }));
      all.push(...batch);
      if (batch.length < PAGE) return all;
    }
  }

  async function labelIds(repo: string, names: string[]): Promise<number[]> {
    let known = await pages<Label>(`listing the labels of ${repo}`, `${path(repo)}/labels`);
    for (const name of names.filter((n) => !known.some((l) => l.name === n))) {
      await giteaCall(`making label ${name} on ${repo}`, () => http.post(`${path(repo)}/labels`, { name, color: NEW_LABEL_COLOR })).catch((err: unknown) => {
        // made meanwhile by another replica: 409/422, found on the next listing
        if (!(err instanceof Error && /HTTP (409|422)/.test(err.message))) throw err;
      });
      known = await pages<Label>(`listing the labels of ${repo}`, `${path(repo)}/labels`);
    }
    return names.map((n) => known.find((l) => l.name === n)!.id);
  }

  return {
    async openIssuesWithLabel(repo: string, label: string): Promise<ForgeIssue[]> {
      const issues = await pages<{ number: number; title: string; labels: Label[]; pull_request?: unknown }>(`listing the open issues of ${repo} labelled ${label}`, `${path(repo)}/issues`, {
        state: "open",
        type: "issues",
        labels: label,
      });
      return issues.filter((i) => !i.pull_request && i.labels.some((l) => l.name === label)).map((i) => ({ number: i.number, title: i.title, labels: i.labels.map((l) => l.name) }));
    },
    async labelAdded(repo: string, issue: number, label: string): Promise<LabelEvent | undefined> {
      const timeline = await pages<TimelineEntry>(`reading the timeline of #${issue} of ${repo}`, `${path(repo)}/issues/${issue}/timeline`);
      const added = timeline.filter((e) => e.type === "label" && e.body === "1" && e.label?.name === label).sort((a, b) => a.id - b.id).at(-1);
      return added ? { id: added.id, at: added.created_at } : undefined;
    },
    async addLabels(repo: string, issue: number, labels: string[]): Promise<void> {
      if (labels.length === 0) return;
      const ids = await labelIds(repo, labels);
      await giteaCall(`labelling #${issue} of ${repo} ${labels.join(", ")}`, () => http.post(`${path(repo)}/issues/${issue}/labels`, { labels: ids }));
    },
    async removeLabel(repo: string, issue: number, label: string): Promise<void> {
      const on = await giteaCall(`reading the labels of #${issue} of ${repo}`, () => http.get<Label[]>(`${path(repo)}/issues/${issue}/labels`));
      const found = on.find((l) => l.name === label);
      if (!found) return;
      try {
        await http.delete(`${path(repo)}/issues/${issue}/labels/${found.id}`);
      } catch (err) {
        if (err instanceof AxiosError && err.response?.status === 404) return;
        throw failure(`removing label ${label} from #${issue} of ${repo}`, err);
      }
    },
    upsertIssueComment: (repo, issue, marker, body) => upsertMarkedComment(http, repo, issue, marker, body),
  };
}
