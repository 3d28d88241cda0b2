import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 20_000 } },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/integration/stack.setup.ts"],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          // files share one dev stack; two cores
          fileParallelism: true,
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: "fault",
          include: ["test/fault/**/*.test.ts"],
          globalSetup: ["test/integration/stack.setup.ts"],
          testTimeout: 900_000,
          hookTimeout: 120_000,
          // one scenario at a time: each loads the 2-core dev stack on its own
          fileParallelism: false,
        },
      },
    ],
  },
});
