import nodeVault from "node-vault";
import { VaultApiError } from "../errors.js";

export type VaultClient = nodeVault.client;

/** The one place node-vault is constructed; every Vault call in the project goes through here. */
export function createVaultClient(addr: string, token?: string): VaultClient {
  return nodeVault({ endpoint: addr, token, apiVersion: "v1", requestOptions: { timeout: 15_000 } });
}

/** Runs a node-vault call and turns its failures into VaultApiError naming the operation. */
export async function callVault<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const e = err as { response?: { statusCode?: number }; message?: string; code?: string };
    const status = e.response?.statusCode;
    const detail = status === undefined ? (e.code ?? e.message ?? String(err)) : `HTTP ${status}: ${e.message}`;
    throw new VaultApiError(`vault: ${what} failed (${detail})`, status, { cause: err });
  }
}

export function statusOf(err: unknown): number | undefined {
  return err instanceof VaultApiError ? err.status : undefined;
}
