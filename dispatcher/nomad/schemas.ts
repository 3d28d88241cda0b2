import * as z from "zod";

// Only the fields the dispatcher reads; zod strips the rest and fails loudly on a changed shape.

export const dispatchResponse = z.object({
  DispatchedJobID: z.string().min(1),
  EvalID: z.string(),
});

export const taskEvent = z.object({
  Type: z.string(),
  ExitCode: z.number().optional(),
  DisplayMessage: z.string().optional(),
  Details: z.record(z.string(), z.string()).nullish(),
});

export const taskState = z.object({
  State: z.string(),
  Failed: z.boolean(),
  StartedAt: z.string().nullish(),
  FinishedAt: z.string().nullish(),
  Events: z.array(taskEvent).nullish(),
});

export const allocStub = z.object({
  ID: z.string(),
  NodeName: z.string().optional().default(""),
  NodeID: z.string().optional().default(""),
  ClientStatus: z.string(),
  CreateIndex: z.number(),
  TaskStates: z.record(z.string(), taskState).nullish(),
});

export const allocList = z.array(allocStub);

export const evaluation = z.object({
  ID: z.string(),
  Status: z.string(),
  StatusDescription: z.string().optional(),
  BlockedEval: z.string().optional(),
  FailedTGAllocs: z
    .record(
      z.string(),
      z.object({
        NodesEvaluated: z.number().optional(),
        NodesExhausted: z.number().optional(),
        DimensionExhausted: z.record(z.string(), z.number()).nullish(),
        ConstraintFiltered: z.record(z.string(), z.number()).nullish(),
        ClassFiltered: z.record(z.string(), z.number()).nullish(),
      }),
    )
    .nullish(),
});

export const evalList = z.array(evaluation);

export const nodeStub = z.object({ ID: z.string(), Status: z.string(), NodePool: z.string().optional() });
export const nodeList = z.array(nodeStub);
export const nodeDetail = z.object({
  ID: z.string(),
  Status: z.string(),
  HostVolumes: z.record(z.string(), z.object({ Name: z.string(), Path: z.string() })).nullish(),
});

/** /v1/jobs?meta=true stubs: dispatched children carry the dispatch meta */
export const jobStub = z.object({
  ID: z.string(),
  ParentID: z.string().optional().default(""),
  Meta: z.record(z.string(), z.string()).nullish(),
  SubmitTime: z.number(),
});
export const jobStubList = z.array(jobStub);

export const variable = z.object({
  Path: z.string(),
  Items: z.record(z.string(), z.string()).nullish(),
  ModifyIndex: z.number(),
});

/** /v1/node/:id attributes: the node's Nomad version (readable with node:read, unlike /v1/agent/self) */
export const nodeAttributes = z.object({ Attributes: z.record(z.string(), z.string()).nullish() });

/** a whole job: the fields of a parent that pinning compares are picked from it */
export const jobDetail = z
  .object({
    ID: z.string(),
    Namespace: z.string(),
    ParentID: z.string().nullish(),
    Dispatched: z.boolean().optional(),
    Meta: z.record(z.string(), z.string()).nullish(),
    TaskGroups: z.array(z.unknown()).nullish(),
  })
  .passthrough();


/** `responseType: "bytes"` bodies are Buffers */
export const logBytes = z.instanceof(Buffer);
export const anyBody = z.unknown();

export const jobSummary = z.object({ JobID: z.string() });

/** One line of /v1/event/stream (topic Allocation); heartbeats are "{}" and skipped before. */
export const eventBatch = z.object({
  Index: z.number(),
  Events: z.array(
    z.object({
      Topic: z.string(),
      Payload: z.object({ Allocation: allocStub.extend({ JobID: z.string() }).optional() }),
    }),
  ),
});
