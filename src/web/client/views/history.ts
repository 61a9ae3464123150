import { jobStatuses, type JobKind, type JobType } from '../../../jobs/model.js';
import type { Job, ListJobsQuery } from '../api.js';
import type { PageContext, View } from '../context.js';
import { field, formatDateTime, h, quoted, replace, type Child } from '../dom.js';
import { failureBox } from './failure.js';

/**
 * What people call each kind, one and many (the filter): a kind the service gains fails the
 * page's build until it has its words.
 */
const kindNames: Record<JobKind, { one: string; many: string }> = {
  vlog: { one: 'Vlog', many: 'Vlogs' },
  ai: { one: 'AI plan', many: 'AI plans' },
  probe: { one: 'Probe', many: 'Probes' },
};
const kinds = Object.entries(kindNames).map(([kind, { many }]): [string, string] => [kind, many]);
/** The job types, as the filter names them: a type the service gains fails the build likewise. */
const typeNames: Record<JobType, string> = {
  VLOG: 'Vlog',
  SUBGOAL_GENERATION: 'Sub-goals',
  ACTION_GENERATION: 'Actions',
  TASK_GENERATION: 'Tasks',
  PROBE: 'Probe',
};
const types = Object.entries(typeNames);
const pageSize = 20;

/** What a job is, in a few words: a vlog's title, an AI job's subject. */
function describeJob(job: Job): Child[] {
  const input = (job.input ?? {}) as Record<string, unknown>;
  const text = (key: string) => (typeof input[key] === 'string' ? input[key] : null);
  if (job.kind === 'vlog') return [h('bdi', {}, text('title') ?? 'Vlog')];
  if (job.kind === 'ai') {
    const type = types.find(([value]) => value === job.type)?.[1] ?? job.type;
    return [`${type} for `, ...quoted(text('action') ?? text('subGoal') ?? text('goal') ?? '…')];
  }
  return [`${job.kind} ${job.type}`];
}

/**
 * Where a job opens on the page, if it has a view there: a goal's sub-goals in the plan, where
 * each can be planned further, as after a reload.
 */
function jobLink(job: Job): string | null {
  if (job.kind === 'vlog') return `#/vlogs/${encodeURIComponent(job.id)}`;
  if (job.type === 'SUBGOAL_GENERATION') return `#/plan/${encodeURIComponent(job.id)}`;
  if (job.kind === 'ai') return `#/ai/${encodeURIComponent(job.id)}`;
  return null;
}

/** A date input's day, at local midnight, as the API's ISO datetime; `nextDay` for an end. */
function dayStart(value: string, nextDay = false): string | undefined {
  if (!value) return undefined;
  const [year, month, day] = value.split('-').map(Number) as [number, number, number];
  return new Date(year, month - 1, day + (nextDay ? 1 : 0)).toISOString();
}

/** The caller's jobs of every kind, newest first, filtered and paged. */
export function historyView(context: PageContext): View {
  const heading = h('h1', { tabindex: -1, id: 'history-heading' }, 'History');
  const select = (name: string, any: string, options: [string, string][]) =>
    h(
      'select',
      { name },
      h('option', { value: '' }, any),
      ...options.map(([value, label]) => h('option', { value }, label)),
    );
  const kind = select('kind', 'All kinds', kinds);
  const type = select('type', 'All types', types);
  const status = select(
    'status',
    'Any status',
    jobStatuses.map((value) => [value, value]),
  );
  const from = h('input', { type: 'date', name: 'createdFrom' });
  const to = h('input', { type: 'date', name: 'createdTo' });
  const failure = failureBox();
  const summary = h('p', { role: 'status', class: 'summary', tabindex: '-1' });
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'jobs' },
    h('caption', { class: 'visually-hidden' }, 'Your jobs, newest first'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['Job', 'Kind', 'Status', 'Created'].map((label) => h('th', { scope: 'col' }, label)),
      ),
    ),
    body,
  );
  const newer = h('button', { type: 'button', class: 'secondary' }, 'Newer jobs');
  const older = h('button', { type: 'button', class: 'secondary' }, 'Older jobs');
  const pageLabel = h('span', { class: 'page-label' });

  // The cursors of the pages shown so far: the first page has none.
  let cursors: (string | undefined)[] = [undefined];
  let nextCursor: string | null = null;
  let query: ListJobsQuery = { limit: pageSize };

  // Each load's number: an answer to an earlier one that comes late (a slow link) is dropped,
  // or it would show its filters' jobs under the filters asked for since.
  let loads = 0;

  function load(page: number) {
    failure.clear();
    const cursor = cursors[page];
    const thisLoad = ++loads;
    summary.textContent = 'Loading…';
    context.api
      .jobs({ ...query, ...(cursor && { cursor }) })
      .then(({ jobs, nextCursor: next }) => {
        if (thisLoad !== loads) return;
        cursors = cursors.slice(0, page + 1);
        nextCursor = next;
        replace(
          body,
          ...jobs.map((job) => {
            const link = jobLink(job);
            return h(
              'tr',
              {},
              h(
                'th',
                { scope: 'row' },
                ...(link ? [h('a', { href: link }, ...describeJob(job))] : describeJob(job)),
              ),
              h('td', { 'data-label': 'Kind' }, kindNames[job.kind as JobKind]?.one ?? job.kind),
              h('td', { 'data-label': 'Status' }, job.status),
              h(
                'td',
                { 'data-label': 'Created' },
                h('time', { datetime: job.createdAt }, formatDateTime(job.createdAt)),
              ),
            );
          }),
        );
        table.hidden = jobs.length === 0;
        summary.textContent =
          jobs.length === 0
            ? page === 0
              ? 'No jobs match these filters.'
              : 'No older jobs.'
            : `Page ${page + 1}: ${jobs.length} job${jobs.length === 1 ? '' : 's'}.`;
        pageLabel.textContent = `Page ${page + 1}`;
        // The button just pressed may be disabled now (the first page, the last): the focus
        // goes to the other one, or the summary, not to the top of the page.
        const focused = document.activeElement;
        newer.disabled = page === 0;
        older.disabled = !next;
        if ((focused === newer || focused === older) && (focused as HTMLButtonElement).disabled) {
          const other = focused === newer ? older : newer;
          if (other.disabled) summary.focus();
          else other.focus();
        }
        older.onclick = () => {
          if (!nextCursor) return;
          cursors[page + 1] = nextCursor;
          load(page + 1);
        };
        newer.onclick = () => load(page - 1);
      })
      .catch((error: unknown) => {
        if (thisLoad !== loads) return;
        summary.textContent = '';
        failure.show(error);
      });
  }

  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filters' },
    field('Kind', kind),
    field('Type', type),
    field('Status', status),
    field('Created from', from),
    field('Created to', to),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit' }, 'Show jobs'),
      h('button', { type: 'reset', class: 'secondary' }, 'Clear filters'),
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (from.value && to.value && to.value < from.value) {
      failure.say('“Created to” must not be before “Created from”.');
      to.focus();
      return;
    }
    const createdFrom = dayStart(from.value);
    const createdTo = dayStart(to.value, true);
    query = {
      limit: pageSize,
      // The selects offer only the API's own values (the registry's kinds, its job types).
      ...(kind.value && { kind: kind.value as NonNullable<ListJobsQuery['kind']> }),
      ...(type.value && { type: type.value as NonNullable<ListJobsQuery['type']> }),
      ...(status.value && { status: status.value as NonNullable<ListJobsQuery['status']> }),
      ...(createdFrom && { createdFrom }),
      ...(createdTo && { createdTo }),
    };
    cursors = [undefined];
    load(0);
  });
  form.addEventListener('reset', () => {
    query = { limit: pageSize };
    cursors = [undefined];
    setTimeout(() => load(0));
  });

  load(0);
  const element = h(
    'section',
    { class: 'view history' },
    heading,
    form,
    failure.element,
    summary,
    table,
    h('nav', { class: 'pager', 'aria-label': 'Pages' }, newer, pageLabel, older),
  );
  return { element, heading };
}
