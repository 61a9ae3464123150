// The web page as a first-time person meets it when things are not quite right: a token pasted
// the way terminals and chats hand it over, and the service unreachable for a while, on the
// view that makes a vlog and on the one that plans with AI.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { insertJob, applyJobUpdate } from '../../src/db/jobs.js';
import type { VlogInput } from '../../src/kinds/vlog/declaration.js';
import { eventually } from '../support/eventually.js';
import { jobRecord, jobSnapshot, vlogInput } from '../support/jobs.js';
import {
  assertFocused,
  phoneViewport,
  startBrowser,
  type BrowserPage,
  type BrowserSession,
  type PageOptions,
} from './browser.js';
import { startPageStack, type PageStack } from './stack.js';

describe('the web page on a first use that goes wrong', () => {
  let stack: PageStack;
  let session: BrowserSession;

  before(async () => {
    [stack, session] = await Promise.all([startPageStack(), startBrowser('first-use')]);
  });
  after(async () => {
    await session?.close();
    await stack?.stop();
  });

  const heading = (page: Page, name: string) => page.getByRole('heading', { level: 1, name });

  function asUser(
    name: string,
    userId: string,
    use: (opened: BrowserPage) => Promise<void>,
    options: PageOptions = {},
  ): Promise<void> {
    return session.withPage(name, options, async (opened) => {
      await opened.page.goto(`${stack.baseUrl}/#token=${await stack.token(userId)}`);
      await heading(opened.page, 'Make a vlog').waitFor();
      await use(opened);
    });
  }

  it('signs in with a token pasted across lines, and says what is wrong with one that is not a token', async () => {
    await session.withPage('pasted-token', {}, async ({ page, step, problems }) => {
      await page.goto(stack.baseUrl);
      const token = page.getByLabel('Access token');
      const signIn = page.getByRole('button', { name: 'Sign in' });
      const alert = page.getByRole('alert');

      await signIn.click();
      await alert.getByText('Paste your access token first.').waitFor();
      assert.equal(await alert.innerText(), 'Paste your access token first.');

      // A character that no token has, as a hurried copy by hand may bring.
      const minted = await stack.token('paster');
      await token.fill(`${minted.slice(0, 30)}\u00e9${minted.slice(30)}`);
      await signIn.click();
      await alert.getByText(/has characters no access token has/).waitFor();
      assert.doesNotMatch(await alert.innerText(), /cannot be reached/);
      await step('not a token');

      // Copied from a terminal that wrapped the banner's long line, through a chat that slipped
      // a zero-width space in.
      await token.fill(
        `${minted.slice(0, 40)}\n${minted.slice(40, 80)}\u200b\n${minted.slice(80)}`,
      );
      await signIn.click();
      await heading(page, 'Make a vlog').waitFor();
      await page.getByRole('banner').getByText('Signed in as paster').waitFor();
      await step('signed in');
      assert.deepEqual(problems(), []);
    });
  });

  // A link names its user before the service has looked at its token: a refused one (forged,
  // expired) must not become the user a genuine link is later asked to switch from.
  it('remembers no one for a link whose token the service refuses, and the user of one it accepts', async () => {
    await session.withPage('refused-link', {}, async ({ page, step }) => {
      const remembered = () =>
        page.evaluate(() =>
          (
            globalThis as unknown as { localStorage: { getItem(key: string): string | null } }
          ).localStorage.getItem('vlogflow.lastUser'),
        );
      const expired = await stack.token('link-mallory', { expiresIn: '1h ago' });
      await page.goto(`${stack.baseUrl}/#token=${expired}`);
      await page.getByText(/Your access token has expired/).waitFor();
      await page.getByLabel('Access token').waitFor();
      assert.equal(await remembered(), null);
      await step('refused');

      await page.goto(`${stack.baseUrl}/#token=${await stack.token('link-victor')}`);
      await heading(page, 'Make a vlog').waitFor();
      await page.getByRole('banner').getByText('Signed in as link-victor').waitFor();
      await eventually(remembered, (user) => user === 'link-victor', {
        what: 'the accepted link’s user remembered',
      });
      await step('accepted');
    });
  });

  it('makes a vlog once the service answers again, when it could not say what may be uploaded', async () => {
    await asUser('limits-unreachable', 'unreached', async ({ page, step }) => {
      let reachable = false;
      await page.route('**/api/vlogs/upload-limits', (route) =>
        reachable ? route.continue() : route.abort('connectionrefused'),
      );
      await page.getByRole('link', { name: 'History' }).click();
      await heading(page, 'History').waitFor();
      await page.getByRole('link', { name: 'Make a vlog' }).click();
      await page
        .getByRole('alert')
        .getByText(/cannot be reached/)
        .waitFor();
      await page.getByLabel('Title').fill('Patience');
      await page.getByLabel('Photos and clips').setInputFiles([stack.media.photo]);
      await page.getByRole('button', { name: 'Make the vlog' }).click();
      await page
        .getByRole('alert')
        .getByText(/still finding out what you can upload/)
        .waitFor();
      await step('limits unknown');

      reachable = true;
      await page.getByText(/^Up to \d+ photos or clips/).waitFor();
      await page.getByRole('list', { name: 'Chosen files' }).getByText('Ready to upload').waitFor();
      assert.equal(await page.getByRole('alert').count(), 0, 'the outage is no longer reported');
      await page.getByRole('button', { name: 'Make the vlog' }).click();
      await heading(page, 'Patience').waitFor();
      await step('vlog made');
    });
  });

  it('says when the service cannot be reached while it plans with AI, and carries on after', async () => {
    let release = () => undefined as void;
    const held = new Promise<void>((resolve) => (release = resolve));
    stack.openai.scenario.answers.push({ kind: 'held', until: held, then: { kind: 'valid' } });
    try {
      await asUser('plan-unreachable', 'planner', async ({ page, step }) => {
        await page.getByRole('link', { name: 'Plan with AI' }).click();
        await page.getByLabel('Your goal').fill('Learn to juggle');
        await page.getByRole('button', { name: 'Break into sub-goals' }).click();
        const block = page.locator('.generation');
        await block
          .getByText('Waiting to start…')
          .or(block.getByText(/Writing/))
          .waitFor();

        await page.context().setOffline(true);
        await block.getByText(/The service cannot be reached/).waitFor();
        await step('unreachable');

        await page.context().setOffline(false);
        release();
        await block.getByText(/^\d+ sub-goals?\.$/).waitFor();
        assert.ok(await block.getByText(/cannot be reached/).isHidden());
        await step('planned');
      });
    } finally {
      release();
      stack.openai.resetScenario();
    }
  });

  it('shows a vlog and an AI plan opened during an outage once the service answers again', async () => {
    const owner = 'outage';
    const failed = jobSnapshot({
      status: 'failed',
      error: { code: 'JOB_FAILED', message: 'It stopped' },
    });
    const vlog = jobRecord<VlogInput>({
      id: 'vlog-opened-in-an-outage',
      kind: 'vlog',
      type: 'VLOG',
      ownerId: owner,
      input: vlogInput({ title: 'Opened in an outage' }),
    });
    const plan = jobRecord({
      id: 'ai-opened-in-an-outage',
      kind: 'ai',
      type: 'SUBGOAL_GENERATION',
      ownerId: owner,
      input: { goal: 'Sleep more', maxItems: 5, language: 'en' },
    });
    for (const record of [vlog, plan]) {
      await insertJob(stack.harness.db, record, 'pending');
      await applyJobUpdate(stack.harness.db, { jobId: record.id, seq: 1, snapshot: failed });
    }
    await asUser('opened-in-an-outage', owner, async ({ page, step }) => {
      let reachable = false;
      for (const id of [vlog.id, plan.id]) {
        await page.route(`**/${id}`, (route) =>
          reachable ? route.continue() : route.abort('connectionrefused'),
        );
      }
      const unreachable = page.getByRole('alert').getByText(/cannot be reached/);

      await page.getByRole('link', { name: 'History' }).click();
      await page.getByRole('link', { name: 'Opened in an outage' }).click();
      await unreachable.waitFor();
      reachable = true;
      await heading(page, 'Opened in an outage').waitFor();
      await page.getByText(/^Failed · /).waitFor();
      assert.ok(await unreachable.isHidden());
      await step('vlog');

      reachable = false;
      await page.getByRole('link', { name: 'History' }).click();
      await page.getByRole('link', { name: 'Sub-goals for “Sleep more”' }).click();
      await unreachable.waitFor();
      reachable = true;
      await page.getByRole('main').getByText('Failed.', { exact: true }).waitFor();
      assert.ok(await unreachable.isHidden());
      await step('AI plan');
    });
  });

  it('says a job is not found at an address with a broken escape, or one its path would misread', async () => {
    await asUser('broken-address', 'typist', async ({ page, problems }) => {
      // A link cut short in a chat (the last escape has lost a digit), and ids a path reads as
      // another route (the upload limits were shown as a vlog, `.` answered 405).
      const addresses = [
        '#/vlogs/vlog-%E0%A4%A',
        '#/vlogs/.',
        '#/vlogs/..',
        '#/vlogs/upload-limits',
        '#/ai/..',
        '#/plan/.',
      ];
      for (const address of addresses) {
        await page.getByRole('link', { name: 'History' }).click();
        await heading(page, 'History').waitFor();
        await page.goto(`${stack.baseUrl}/${address}`);
        const alert = page.getByRole('alert').filter({ hasText: /could not be found/ });
        await alert.waitFor();
        assert.match(await alert.innerText(), /No (vlog|AI job) with id/, address);
      }
      assert.deepEqual(
        problems().filter((problem) => !problem.includes('404')),
        [],
      );
    });
  });

  it('promises to keep trying only where it does: an upload cut off is to be sent again', async () => {
    await asUser('upload-cut-off', 'uploader', async ({ page, step }) => {
      let reachable = false;
      await page.route('**/api/vlogs', (route) =>
        reachable ? route.continue() : route.abort('connectionreset'),
      );
      await page.getByLabel('Title').fill('Cut off');
      await page.getByLabel('Photos and clips').setInputFiles([stack.media.photo]);
      await page.getByRole('list', { name: 'Chosen files' }).getByText('Ready to upload').waitFor();
      await page.getByRole('button', { name: 'Make the vlog' }).click();
      const alert = page.getByRole('alert').filter({ hasText: /cannot be reached/ });
      await alert.getByText(/Send it again/).waitFor();
      assert.doesNotMatch(await alert.innerText(), /keeps trying/);
      await step('upload cut off');

      reachable = true;
      await page.getByRole('button', { name: 'Make the vlog' }).click();
      await heading(page, 'Cut off').waitFor();
    });
  });

  it('takes Cancel away once a cancel is accepted, so a second press cannot be refused', async () => {
    let release = () => undefined as void;
    const held = new Promise<void>((resolve) => (release = resolve));
    stack.openai.scenario.answers.push({ kind: 'held', until: held, then: { kind: 'valid' } });
    try {
      await asUser('plan-cancelled', 'canceller', async ({ page, step }) => {
        // Polling (every 3 s) leaves time between the cancel and the page hearing of it.
        await page.goto(`${stack.baseUrl}/?live=poll#/plan`);
        await page.getByLabel('Your goal').fill('Read more books');
        const started = page.waitForResponse(
          (response) => response.url().endsWith('/api/ai/jobs') && response.status() === 202,
        );
        await page.getByRole('button', { name: 'Break into sub-goals' }).click();
        const { id } = (await (await started).json()) as { id: string };
        const main = page.getByRole('main');
        await main
          .getByText('Waiting to start…')
          .or(main.getByText(/^Writing/))
          .waitFor();
        // The page does not hear of the job again until the test has looked.
        let heard = false;
        await page.route(`**/api/ai/jobs/${id}`, (route) =>
          heard ? route.continue() : route.abort('connectionrefused'),
        );
        const cancel = page.getByRole('button', { name: /^Cancel sub-goals/ });
        await cancel.focus();
        await page.keyboard.press('Enter');
        await eventually(
          () => stack.api().user('canceller').view<{ status: string }>('ai', id),
          (job) => job.status === 'cancelled',
          { what: 'the job cancelled' },
        );
        await eventually(
          () => cancel.isHidden(),
          (hidden) => hidden,
          { timeoutMs: 5_000, what: 'no Cancel for a job already cancelled' },
        );
        // The button hid itself: the keyboard goes on from its block, not the page's top.
        await assertFocused(main.getByRole('heading', { name: /^Sub-goals for/ }));
        heard = true;
        await page.getByRole('main').getByText('Cancelled.', { exact: true }).waitFor();
        await step('cancelled');
      });
    } finally {
      release();
      stack.openai.resetScenario();
    }
  });

  it('keeps a plan of long unbroken words within a phone’s screen', async () => {
    // A pasted link, or a word in a language written without spaces.
    const goal = `Read https://example.com/${'a'.repeat(300)}`;
    const item = { title: 'x'.repeat(150), description: 'y'.repeat(600) };
    stack.openai.scenario.answers.push({ kind: 'text', text: JSON.stringify({ items: [item] }) });
    try {
      await asUser(
        'long-words',
        'wordy',
        async ({ page, step }) => {
          const assertFits = async (view: string) => {
            const widths = await page.evaluate(() => {
              const window = globalThis as unknown as {
                innerWidth: number;
                document: { documentElement: { scrollWidth: number } };
              };
              return {
                page: window.document.documentElement.scrollWidth,
                screen: window.innerWidth,
              };
            });
            assert.ok(
              widths.page <= widths.screen,
              `${view}: ${widths.page} px wide on ${widths.screen}`,
            );
          };
          await page.getByRole('link', { name: 'Plan with AI' }).click();
          await page.getByLabel('Your goal').fill(goal);
          await page.getByRole('button', { name: 'Break into sub-goals' }).click();
          await page.getByRole('main').getByText('1 sub-goal.', { exact: true }).waitFor();
          await assertFits('the plan');
          await step('plan');
          await page.getByRole('link', { name: 'History' }).click();
          await page.getByRole('link', { name: /^Sub-goals for/ }).click();
          // Sub-goals open in the plan, where they can be carried on.
          await heading(page, 'Plan with AI').waitFor();
          await page.getByRole('main').getByText('1 sub-goal.', { exact: true }).waitFor();
          await assertFits('the plan from the history');
          await step('plan from the history');
        },
        { viewport: phoneViewport },
      );
    } finally {
      stack.openai.resetScenario();
    }
  });

  // A right-to-left embedding (U+202B) left open in a goal would carry its direction to the
  // closing quote and whatever follows it in the heading and the history's row. (An override,
  // U+202E, is refused by the API.)
  it('isolates a goal from the words around it, a right-to-left mark left open in it too', async () => {
    const goal = 'Learn \u202Bhebrew';
    await asUser('bidi-goal', 'bidi', async ({ page, step }) => {
      await page.getByRole('link', { name: 'Plan with AI' }).click();
      await page.getByLabel('Your goal').fill(goal);
      await page.getByRole('button', { name: 'Break into sub-goals' }).click();
      const main = page.getByRole('main');
      await main.getByText(/^\d+ sub-goals\.$/).waitFor();
      const heading = main.getByRole('heading', { name: /^Sub-goals for/ });
      assert.equal(await heading.locator('bdi').textContent(), goal);
      assert.equal(await heading.textContent(), `Sub-goals for “${goal}”`);
      await step('plan');
      await page.getByRole('link', { name: 'History' }).click();
      const row = page.getByRole('link', { name: /^Sub-goals for/ });
      assert.equal(await row.locator('bdi').textContent(), goal);
      await step('history');
    });
  });

  it('tries a failed AI generation again, to its items', async () => {
    stack.openai.scenario.failures.push({ status: 400, message: 'The prompt is not allowed' });
    try {
      await asUser('plan-retried', 'retrier', async ({ page, step }) => {
        await page.getByRole('link', { name: 'Plan with AI' }).click();
        await page.getByLabel('Your goal').fill('Swim a mile');
        await page.getByRole('button', { name: 'Break into sub-goals' }).click();
        const main = page.getByRole('main');
        await main.getByText('Failed.', { exact: true }).waitFor();
        await page.getByRole('alert').getByText('The AI provider refused the request.').waitFor();
        await step('failed');
        await page.getByRole('button', { name: /^Try sub-goals for .* again$/ }).focus();
        await page.keyboard.press('Enter');
        await assertFocused(main.getByRole('heading', { name: /^Sub-goals for/ }));
        await main.getByText(/^\d+ sub-goals\.$/).waitFor();
        assert.ok(await page.getByText('The AI provider refused the request.').isHidden());
        assert.ok(await page.getByRole('button', { name: /^Try sub-goals/ }).isHidden());
        await step('tried again');
      });
    } finally {
      stack.openai.resetScenario();
    }
  });
});
