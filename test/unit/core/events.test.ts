import { describe, expect, it } from "vitest";
import { createLoopEmitter } from "../../../dispatcher/core/events.js";

describe("createLoopEmitter", () => {
  it("delivers an event to every listener of its name, in the order they were added", () => {
    const events = createLoopEmitter();
    const got: string[] = [];
    events.on("results:pushed", (e) => got.push(`a:${e.ids.join(",")}`));
    events.on("results:pushed", (e) => got.push(`b:${e.ids.join(",")}`));
    events.on("action:refused", () => got.push("other"));
    events.emit("results:pushed", { ids: ["x", "y"], rejections: 0 });
    expect(got).toEqual(["a:x,y", "b:x,y"]);
  });

  it("stops delivering to a listener once it is removed", () => {
    const events = createLoopEmitter();
    let calls = 0;
    const off = events.on("results:pushed", () => calls++);
    events.emit("results:pushed", { ids: [], rejections: 0 });
    off();
    events.emit("results:pushed", { ids: [], rejections: 0 });
    expect(calls).toBe(1);
  });

  it("keeps delivering when a listener throws: an observer's bug never fails an action", () => {
    const events = createLoopEmitter();
    const got: string[] = [];
    events.on("action:refused", () => {
      throw new Error("metrics bug");
    });
    events.on("action:refused", (e) => got.push(e.id));
    expect(() => events.emit("action:refused", { id: "deploy", class: "invalid", problem: "bad" })).not.toThrow();
    expect(got).toEqual(["deploy"]);
  });
});
