import { newIdempotencyKey, readUntilAnswered, type AiJob, type AiJobRequest } from '../api.js';
import { StreamedAnswer, type AnswerItem } from '../answer-items.js';
import type { PageContext, View } from '../context.js';
import { field, h, quoted, replace } from '../dom.js';
import { followJob, type Following } from '../follow-job.js';
import { failureBox, jobErrorText } from './failure.js';
import { workerWaitLine } from './worker-wait.js';
import { canBeRetried } from '../../../jobs/model.js';

type AiStatus = AiJob['status'];
const ended: ReadonlySet<AiStatus> = new Set(['completed', 'failed', 'timeout', 'cancelled']);

/** What each generation type makes, as the page names it. */
const generationWords: Record<AiJob['type'], { items: string; one: string }> = {
  SUBGOAL_GENERATION: { items: 'Sub-goals', one: 'sub-goal' },
  ACTION_GENERATION: { items: 'Actions', one: 'action' },
  TASK_GENERATION: { items: 'Tasks', one: 'task' },
};

interface GenerationOptions {
  context: PageContext;
  /** Starts the job, or reads one already started. */
  start: () => Promise<AiJob>;
  type: AiJob['type'];
  /** The level of the block's heading. */
  level: 2 | 3 | 4;
  /** What the block is for, in its heading: `Sub-goals for “Run a marathon”`. */
  subject: string;
  /**
   * Renders a validated item (with what it leads to: the next generation's button); `position`
   * counts from 1, as the list shows it.
   */
  renderItem: (item: AnswerItem, position: number) => HTMLElement;
}

/**
 * One AI generation as the page shows it: its items appearing as the model writes them, then
 * the validated ones; cancel while it runs, try again when it failed or timed out.
 */
function generation(options: GenerationOptions): {
  element: HTMLElement;
  heading: HTMLElement;
  dispose: () => void;
} {
  const { context, type } = options;
  const { api } = context;
  const words = generationWords[type];
  const headingTag = `h${options.level}` as const;
  const failure = failureBox();
  const status = h(
    'p',
    { class: 'generation-status', role: 'status' },
    `Asking for ${words.items.toLowerCase()}…`,
  );
  const list = h('ol', {
    class: 'items',
    'aria-label': `${words.items} for ${options.subject}`,
    'aria-busy': 'true',
  });
  const notice = h('p', { class: 'hint', hidden: true });
  // Without it, a job followed while the service is down would look merely slow.
  const unreachable = h(
    'p',
    { class: 'transport', hidden: true },
    'The service cannot be reached; trying again every 3 seconds.',
  );
  const workerWait = workerWaitLine();
  const cancel = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Cancel');
  const retry = h('button', { type: 'button', hidden: true }, 'Try again');
  cancel.setAttribute('aria-label', `Cancel ${words.items.toLowerCase()} for ${options.subject}`);
  retry.setAttribute('aria-label', `Try ${words.items.toLowerCase()} for ${options.subject} again`);
  const jobError = h('div', { class: 'failure', role: 'alert', hidden: true });
  const heading = h(
    headingTag,
    { tabindex: -1 },
    `${words.items} for `,
    ...quoted(options.subject),
  );
  const element = h(
    'section',
    { class: `generation level-${options.level}` },
    heading,
    status,
    unreachable,
    workerWait.element,
    list,
    notice,
    jobError,
    failure.element,
    h('div', { class: 'actions' }, cancel, retry),
  );

  let job: AiJob | null = null;
  let following: Following | null = null;
  const answer = new StreamedAnswer();
  let shownDraft = 0;
  // Cancel is not offered again for the attempt once its cancel is accepted: pressed after the
  // job ended, and before the page heard of it, a cancel is refused.
  let cancelAccepted = false;

  const writing = (count: number) =>
    `Writing ${words.items.toLowerCase()}…${count > 0 ? ` ${count} so far` : ''}`;

  function showDraft() {
    const items = answer.items();
    if (items.length === shownDraft) return;
    shownDraft = items.length;
    replace(
      list,
      ...items.map((item) =>
        h('li', { class: 'draft' }, h('strong', {}, item.title), h('p', {}, item.description)),
      ),
    );
    status.textContent = writing(items.length);
  }

  /** Shows the job as `current` says, whatever was shown before (an end may be superseded). */
  function showJob(current: AiJob) {
    job = current;
    const over = ended.has(current.status);
    cancel.hidden = over || cancelAccepted;
    retry.hidden = !canBeRetried(current.status, current.attempt);
    list.setAttribute('aria-busy', String(!over));
    jobError.hidden = !current.error || current.status === 'completed';
    if (current.error) replace(jobError, ...jobErrorText(current.error));
    const result = current.status === 'completed' ? current.result : null;
    notice.hidden = !result?.notice;
    notice.textContent = result?.notice ?? '';
    if (result) {
      const items = result.items;
      replace(list, ...items.map((item, index) => options.renderItem(item, index + 1)));
      status.textContent = `${items.length} ${items.length === 1 ? words.one : words.items.toLowerCase()}.`;
      // The list shows the answer now, no longer the draft.
      shownDraft = -1;
      return;
    }
    if (shownDraft < 0) showDraft();
    if (current.status === 'completed') {
      // The status comes a moment before the end that carries the answer: not a failure.
      list.setAttribute('aria-busy', 'true');
      status.textContent = 'Finishing…';
    } else if (over) {
      status.textContent =
        current.status === 'cancelled'
          ? 'Cancelled.'
          : current.status === 'timeout'
            ? 'Took too long.'
            : 'Failed.';
    } else {
      status.textContent =
        current.status === 'processing' || shownDraft > 0
          ? writing(shownDraft)
          : `Waiting to start${current.phase ? ` (${current.phase})` : ''}…`;
    }
  }

  function follow(attempt: number) {
    const after = following?.position() ?? undefined;
    following?.stop();
    const id = job!.id;
    following = followJob<AiJob>({
      link: () => api.aiJobStreamLink(id),
      read: () => api.aiJob(id),
      ended: (current) => ended.has(current.status),
      onEvent: (event) => {
        if (event.type === 'output' && event.output) {
          answer.add(event.output);
          showDraft();
        } else if (job) {
          showJob({
            ...job,
            status: event.status as AiStatus,
            progress: event.progress,
            phase: event.phase,
            error: event.error,
          });
        }
      },
      onView: showJob,
      onEnd: (current) => {
        unreachable.hidden = true;
        showJob(current);
        context.announce(`${words.items} for ${options.subject}: ${status.textContent ?? ''}`);
      },
      onTransport: (transport) => (unreachable.hidden = transport !== 'unreachable'),
      onWaitingForWorker: workerWait.show,
      onFailure: (error) => failure.show(error),
      pollOnly: context.pollOnly,
      confirmEndMs: context.confirmEndMs,
      attempt,
      ...(after && { after }),
    });
  }

  cancel.addEventListener('click', () => {
    if (!job) return;
    failure.clear();
    cancel.disabled = true;
    api
      .cancelAiJob(job.id)
      .then(() => {
        cancelAccepted = true;
        cancel.hidden = true;
        // Hidden while focused, the button would drop the keyboard to the top of the page.
        heading.focus();
      })
      .catch((error: unknown) => {
        failure.show(error);
        // Disabled while it was asked, the button lost the focus: it gets it back.
        cancel.disabled = false;
        cancel.focus();
      })
      .finally(() => (cancel.disabled = false));
  });
  retry.addEventListener('click', () => {
    if (!job) return;
    failure.clear();
    retry.hidden = true;
    heading.focus();
    api
      .retryAiJob(job.id, job.attempt)
      .then(({ attempt }) => {
        cancelAccepted = false;
        shownDraft = 0;
        list.setAttribute('aria-busy', 'true');
        replace(list);
        status.textContent = `Asking again for ${words.items.toLowerCase()}…`;
        follow(attempt);
      })
      .catch((error: unknown) => {
        retry.hidden = false;
        failure.show(error);
      });
  });

  options
    .start()
    .then((started) => {
      showJob(started);
      if (!ended.has(started.status)) follow(started.attempt);
    })
    .catch((error: unknown) => {
      list.setAttribute('aria-busy', 'false');
      status.textContent = '';
      failure.show(error);
    });
  return { element, heading, dispose: () => following?.stop() };
}

/**
 * The items of a plan's levels with what they lead to: a sub-goal's button that plans its
 * actions in place, an action's that breaks it into tasks. What it starts is stopped by
 * `disposers`, when the view is left.
 */
function nextSteps(context: PageContext, disposers: (() => void)[]) {
  /**
   * An item of one level with the button that generates the level under it in place: a
   * sub-goal's actions, an action's tasks.
   */
  function itemWithNextStep(next: {
    step: string;
    itemWord: string;
    /** The item's heading level, one under its block's; the block it asks for has it too. */
    level: 3 | 4;
    request: (item: AnswerItem) => AiJobRequest;
    renderItem: (item: AnswerItem) => GenerationOptions['renderItem'];
  }) {
    return (item: AnswerItem, position: number) => {
      const more = h('div');
      const button = h(
        'button',
        {
          type: 'button',
          class: 'secondary',
          'aria-label': nextStepName(next.step, next.itemWord, position, item),
        },
        next.step,
      );
      // One key for the item's request: pressed again after a refusal or a network error, the
      // button makes no second job of one the service did start.
      const idempotencyKey = newIdempotencyKey();
      button.addEventListener('click', () => {
        button.hidden = true;
        const request = next.request(item);
        const block = generation({
          context,
          type: request.type,
          level: next.level,
          subject: item.title,
          start: () =>
            context.api.startAiJob(request, idempotencyKey).catch((error: unknown) => {
              // Refused (the in-flight cap, the service unavailable) or cut off: the button
              // asks again, in place of this block and its message.
              button.hidden = false;
              throw error;
            }),
          renderItem: next.renderItem(item),
        });
        disposers.push(block.dispose);
        replace(more, block.element);
        // The button is gone: the keyboard goes on from what it asked for, not from the top.
        block.heading.focus();
      });
      return h(
        'li',
        {},
        h(`h${next.level}`, {}, item.title),
        h('p', {}, item.description),
        button,
        more,
      );
    };
  }

  /** `level`: the actions' heading level, one under their block's. */
  const actionItem = (goalText: string, subGoal: string, level: 3 | 4) =>
    itemWithNextStep({
      step: 'Break into tasks',
      itemWord: 'action',
      level,
      request: (action) => ({
        type: 'TASK_GENERATION',
        input: { goal: goalText, subGoal, action: action.title, maxItems: 5, language: 'en' },
      }),
      renderItem: () => taskItem,
    });

  const subGoalItem = (goalText: string) =>
    itemWithNextStep({
      step: 'Plan actions',
      itemWord: 'sub-goal',
      level: 3,
      request: (subGoal) => ({
        type: 'ACTION_GENERATION',
        input: { goal: goalText, subGoal: subGoal.title, maxItems: 5, language: 'en' },
      }),
      renderItem: (subGoal) => actionItem(goalText, subGoal.title, 4),
    });

  return { actionItem, subGoalItem };
}

/**
 * Plan with AI: a goal into sub-goals, a sub-goal into actions, an action into tasks. `id`, from
 * the address (`#/plan/<id>`), is a sub-goal job to show again: the one a reload left.
 */
export function planView(context: PageContext, id?: string): View {
  const heading = h('h1', { tabindex: -1, id: 'plan-heading' }, 'Plan with AI');
  const goal = h('input', {
    type: 'text',
    name: 'goal',
    required: true,
    maxlength: 500,
    autocomplete: 'off',
  });
  const about = h('textarea', { name: 'context', rows: 2, maxlength: 4000 });
  const failure = failureBox();
  const results = h('div', { class: 'plan-results' });
  const disposers: (() => void)[] = [];

  const { subGoalItem } = nextSteps(context, disposers);
  // Disabled while a start is on its way: a double click, or Enter pressed twice, made two jobs.
  const submitButton = h('button', { type: 'submit' }, 'Break into sub-goals');

  const form = h(
    'form',
    { novalidate: true, 'aria-labelledby': 'plan-heading' },
    field('Your goal', goal, 'For example: run a marathon in the spring.'),
    field(
      'Anything the AI should know (optional)',
      about,
      'Who it is for, constraints, deadlines.',
    ),
    failure.element,
    submitButton,
  );
  function showSubGoals(goalText: string, startJob: () => Promise<AiJob>) {
    for (const dispose of disposers.splice(0)) dispose();
    const block = generation({
      context,
      type: 'SUBGOAL_GENERATION',
      level: 2,
      subject: goalText,
      start: startJob,
      renderItem: subGoalItem(goalText),
    });
    disposers.push(block.dispose);
    replace(results, block.element);
  }

  let disposed = false;
  let submissions = 0;
  let stopReading = () => undefined as void;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    failure.clear();
    const goalText = goal.value.trim();
    if (!goalText) {
      failure.say('Write your goal first.');
      goal.focus();
      return;
    }
    stopReading();
    const submission = ++submissions;
    const request: AiJobRequest = {
      type: 'SUBGOAL_GENERATION',
      input: {
        goal: goalText,
        maxItems: 5,
        language: 'en',
        ...(about.value.trim() && { context: about.value.trim() }),
      },
    };
    const idempotencyKey = newIdempotencyKey();
    submitButton.disabled = true;
    showSubGoals(goalText, () =>
      context.api
        .startAiJob(request, idempotencyKey)
        .then((job) => {
          // The address names the plan, so that a reload opens it again rather than an empty
          // form; replaced, not navigated to, so that the plan being written stays as it is.
          if (!disposed && submission === submissions) {
            history.replaceState(history.state, '', `#/plan/${encodeURIComponent(job.id)}`);
          }
          return job;
        })
        .finally(() => (submitButton.disabled = false)),
    );
  });

  if (id) {
    stopReading = readUntilAnswered(
      () => context.api.aiJob(id),
      (job) => {
        failure.clear();
        // Only a goal's sub-goals are a plan's first level; any other job has its own view.
        if (job.type !== 'SUBGOAL_GENERATION') {
          location.replace(`#/ai/${encodeURIComponent(id)}`);
          return;
        }
        const input = job.input as { goal: string; context?: string };
        goal.value = input.goal;
        about.value = input.context ?? '';
        showSubGoals(input.goal, () => Promise.resolve(job));
      },
      (error) => failure.show(error),
    );
  }

  const element = h('section', { class: 'view plan' }, heading, form, results);
  return {
    element,
    heading,
    dispose: () => {
      disposed = true;
      stopReading();
      disposers.forEach((dispose) => dispose());
    },
  };
}

/** One AI job, opened from the history: what it was asked, and its items. */
export function aiJobView(context: PageContext, id: string): View {
  const heading = h('h1', { tabindex: -1 }, 'AI plan');
  const asked = h('dl', { class: 'asked' });
  const element = h('section', { class: 'view ai-job' }, heading, asked);
  const failure = failureBox();
  element.append(failure.element);
  const disposers: (() => void)[] = [];
  const { actionItem } = nextSteps(context, disposers);
  const stopReading = readUntilAnswered(
    () => context.api.aiJob(id),
    (job) => {
      failure.clear();
      const input = job.input as { goal?: string; subGoal?: string; action?: string };
      replace(
        asked,
        ...[
          ['Goal', input.goal],
          ['Sub-goal', input.subGoal],
          ['Action', input.action],
        ].flatMap(([term, value]) => (value ? [h('dt', {}, term), h('dd', {}, value)] : [])),
      );
      const subject = input.action ?? input.subGoal ?? input.goal ?? job.id;
      const block = generation({
        context,
        type: job.type,
        level: 2,
        subject,
        start: () => Promise.resolve(job),
        // Actions can still be broken into tasks here, as in the plan they were asked from.
        renderItem:
          job.type === 'ACTION_GENERATION' && input.goal && input.subGoal
            ? actionItem(input.goal, input.subGoal, 3)
            : taskItem,
      });
      disposers.push(block.dispose);
      element.append(block.element);
    },
    (error) => failure.show(error),
  );
  return {
    element,
    heading,
    dispose: () => {
      stopReading();
      disposers.forEach((dispose) => dispose());
    },
  };
}

/** A task: the last level, with nothing under it. */
function taskItem(item: AnswerItem): HTMLElement {
  return h(
    'li',
    {},
    h('strong', {}, item.title),
    h('p', {}, item.description),
    item.estimatedMinutes
      ? h('p', { class: 'hint' }, `About ${item.estimatedMinutes} minutes`)
      : null,
  );
}

/**
 * The accessible name of an item's next-step button: its position as well as its title, since a
 * model may give two items the same title and two buttons must not sound the same.
 */
function nextStepName(step: string, itemWord: string, position: number, item: AnswerItem) {
  return `${step} for ${itemWord} ${position}: ${item.title}`;
}
