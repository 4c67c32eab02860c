// src/middleware/store-sink.ts: the store chain as one ItemSink, so the sink stage stays one
// stage: the `[output]` sink (store middleware "output", weight 0) and a module's other store
// middleware all receive each batch, and the batch is durable when every one of them is.
import type { ItemBatch, ItemSink } from "../storage/sink.ts";
import type { MiddlewareChains } from "./chains.ts";
import type { StoreMiddleware } from "../modules/middleware.ts";

export class StoreChainSink implements ItemSink {
  private readonly targets = new Map<string, readonly StoreMiddleware[]>();
  private readonly output: StoreMiddleware;

  constructor(
    output: ItemSink,
    private readonly chains: MiddlewareChains,
  ) {
    this.output = { kind: "store", name: "output", weight: 0, sink: output };
  }

  private targetsOf(module: string): readonly StoreMiddleware[] {
    let t = this.targets.get(module);
    if (!t) {
      t = [this.output, ...this.chains.of(module).store].sort((a, b) => (a.weight ?? 0) - (b.weight ?? 0));
      this.targets.set(module, t);
    }
    return t;
  }

  /** Stored now if any target stored it now (each one keys batches by fingerprint itself). */
  async write(batch: ItemBatch): Promise<boolean> {
    const targets = this.targetsOf(batch.module);
    const results = await Promise.all(
      targets.map((t) =>
        t.sink.write(batch).catch((err: unknown) => {
          // the cause stays: an unstorable item or a write fault is still one
          throw new Error(`store middleware ${t.name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }),
      ),
    );
    return results.some(Boolean);
  }

  describe(): string {
    return [this.output.sink.describe(), ...this.chains.allStores().map((s) => `${s.name}: ${s.sink.describe()}`)].join(", ");
  }

  async close(): Promise<void> {
    await Promise.all([this.output.sink.close(), ...this.chains.allStores().map((s) => s.sink.close())]);
  }
}

/** The sink a flow writes to: `output` alone when no store middleware is registered (zero cost). */
export function withStoreMiddleware(output: ItemSink, chains: MiddlewareChains): ItemSink {
  return chains.anyStore ? new StoreChainSink(output, chains) : output;
}
