/**
 * Memoises a mode's per-service-port output by ServicePortState identity (the
 * proxier hands out a new state object only for a changed service), so an
 * unchanged service yields the very same output objects sync after sync and
 * the mode can skip it by identity. Everything is dropped when the render
 * context shared by all services (node IP, masquerade settings...) changes.
 */
import type { ServicePortState } from './types.ts';

export class ServiceRenderCache<R extends object> {
  private contextKey = '';
  private renders = new WeakMap<ServicePortState, R>();

  /** The output for a state under a context (identified by its key), rendered when not yet known. */
  get(state: ServicePortState, contextKey: string, render: (state: ServicePortState) => R): R {
    if (contextKey !== this.contextKey) {
      this.contextKey = contextKey;
      this.renders = new WeakMap();
    }
    let r = this.renders.get(state);
    if (!r) {
      r = render(state);
      this.renders.set(state, r);
    }
    return r;
  }
}
