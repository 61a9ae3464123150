import type { Api } from './api.js';

/** What every view gets from the page. */
export interface PageContext {
  api: Api;
  /** Says something to screen readers (the page's polite live region). */
  announce(message: string): void;
  navigate(hash: string): void;
  /** `?live=poll` on the page's address: follow jobs by polling only (no stream). */
  pollOnly: boolean;
  /**
   * `?confirm-end-ms=` on the page's address: how long an end shown waits for its confirmation
   * (the browser tests shorten it); absent, followJob's default.
   */
  confirmEndMs: number | undefined;
  /** Data a view hands to the next one (the vlog just accepted), by the hash it navigates to. */
  handOver: Map<string, unknown>;
}

/** A rendered view: its root, and what to stop when the page leaves it. */
export interface View {
  element: HTMLElement;
  /** The heading the page moves focus to when the view opens. */
  heading: HTMLElement;
  dispose?: () => void;
  /**
   * Whether the view holds what the person chose or typed and has not sent: such a view is
   * kept while the page asks them to sign in again, and shown as it was if they do as the same
   * user.
   */
  holdsInput?: () => boolean;
}

export type ViewFactory = (context: PageContext, ...params: string[]) => View;
