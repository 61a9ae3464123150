import { readUntilAnswered, type Vlog } from '../api.js';
import type { PageContext, View } from '../context.js';
import { formatBytes, h, replace } from '../dom.js';
import { followJob, type Following, type JobEventData, type Transport } from '../follow-job.js';
import { failureBox, jobErrorText } from './failure.js';
import { workerWaitLine } from './worker-wait.js';
import { canBeRetried } from '../../../jobs/model.js';

type VlogStatus = Vlog['status'];

/** The stages a vlog goes through, as the page names them; every status has its place. */
const stages: { label: string; statuses: VlogStatus[]; doing: string }[] = [
  { label: 'Waiting to start', statuses: ['pending', 'queued'], doing: 'Waiting to start' },
  { label: 'Analyzing your media', statuses: ['analyzing'], doing: 'Analyzing your media' },
  { label: 'Making the video', statuses: ['generating'], doing: 'Making the video' },
  { label: 'Delivering the video', statuses: ['transferring'], doing: 'Delivering the video' },
  { label: 'Ready', statuses: ['completed'], doing: 'Your vlog is ready' },
];

const ended: ReadonlySet<VlogStatus> = new Set(['completed', 'failed', 'cancelled', 'timeout']);
const transportText: Record<Transport, string> = {
  connecting: 'Connecting for live updates…',
  stream: 'Live updates on.',
  polling: 'Checking for updates every 3 seconds.',
  unreachable: 'The service cannot be reached; trying again every 3 seconds.',
};

/** One vlog: its stages and progress live, cancel and retry, and at the end the video. */
export function vlogView(context: PageContext, id: string): View {
  const { api } = context;
  const heading = h('h1', { tabindex: -1 }, 'Your vlog');
  const failure = failureBox();
  const stageList = h('ol', { class: 'stages', 'aria-label': 'Stages' });
  const progress = h('progress', { max: 100, value: 0, id: 'vlog-progress' });
  const progressText = h('p', { class: 'progress-text' });
  const transport = h('p', { class: 'transport' });
  const workerWait = workerWaitLine();
  const jobError = h('div', { class: 'failure', role: 'alert', hidden: true });
  const result = h('section', {
    class: 'result',
    'aria-labelledby': 'result-heading',
    hidden: true,
  });
  const media = h('ul', { class: 'files', 'aria-label': 'Uploaded files' });
  const cancel = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Cancel vlog');
  const retry = h('button', { type: 'button', hidden: true }, 'Retry vlog');
  // Cancel and Retry hide themselves once accepted: the keyboard goes on from the progress.
  const progressHeading = h('h2', { id: 'progress-heading', tabindex: -1 }, 'Progress');
  const progressSection = h(
    'section',
    { class: 'progress', 'aria-labelledby': 'progress-heading' },
    progressHeading,
    stageList,
    h('label', { for: progress.id }, 'Vlog progress'),
    progress,
    progressText,
    transport,
    workerWait.element,
    h('div', { class: 'actions' }, cancel, retry),
  );

  let following: Following | null = null;
  let shownStatus: VlogStatus | null = null;
  let reached = -1;
  let shownAttempt = 1;
  // Cancel is not offered again for the attempt once its cancel is accepted: pressed after the
  // vlog ended, and before the page heard of it, a cancel is refused.
  let cancelAccepted = false;

  function renderState(status: VlogStatus, percent: number, phase: string | null, attempt: number) {
    shownAttempt = attempt;
    const index = stages.findIndex((stage) => stage.statuses.includes(status));
    // A vlog that failed or was cancelled stopped in the last stage the page saw it in.
    if (index >= 0) reached = index;
    const stopped = index < 0 ? reached : -1;
    replace(
      stageList,
      ...stages.map((stage, at) => {
        const state =
          status === 'completed' || at < Math.max(index, stopped)
            ? 'done'
            : at === index
              ? 'current'
              : at === stopped
                ? 'stopped'
                : 'upcoming';
        return h(
          'li',
          { class: state, 'aria-current': state === 'current' ? 'step' : false },
          stage.label,
          h(
            'span',
            { class: 'visually-hidden' },
            state === 'upcoming' ? '' : ` (${state === 'current' ? 'in progress' : state})`,
          ),
        );
      }),
    );
    progress.value = percent;
    const doing =
      status === 'failed'
        ? 'Failed'
        : status === 'cancelled'
          ? 'Cancelled'
          : status === 'timeout'
            ? 'Timed out'
            : (stages[index]?.doing ?? status);
    progressText.textContent = `${doing} · ${percent}%${phase ? ` · ${phase}` : ''}${attempt > 1 ? ` · attempt ${attempt}` : ''}`;
    cancel.hidden = ended.has(status) || cancelAccepted;
    if (status !== shownStatus) {
      shownStatus = status;
      context.announce(status === 'completed' ? 'Your vlog is ready.' : `${doing}.`);
    }
  }

  function renderVlog(vlog: Vlog) {
    heading.textContent = vlog.title;
    document.title = `${vlog.title} · vlogflow`;
    renderState(vlog.status, vlog.progress, vlog.phase, vlog.attempt);
    replace(
      media,
      ...vlog.media.map((file) => h('li', {}, `${file.name} (${formatBytes(file.size)})`)),
    );
    retry.hidden = !canBeRetried(vlog.status, vlog.attempt);
    jobError.hidden = !vlog.error || vlog.status === 'completed';
    if (vlog.error && vlog.status !== 'completed') replace(jobError, ...jobErrorText(vlog.error));
    result.hidden = vlog.status !== 'completed';
    if (vlog.status === 'completed') renderResult(vlog);
  }

  function renderResult(vlog: Vlog) {
    if (!vlog.videoUrl) {
      replace(
        result,
        h('h2', { id: 'result-heading' }, 'The video'),
        h(
          'p',
          {},
          vlog.mediaDeletedAt
            ? 'The video was deleted at the end of its retention period.'
            : 'The video is not available.',
        ),
      );
      return;
    }
    // Once shown, the video stays: a later read of the same finished vlog must not stop it.
    if (result.querySelector('video')) return;
    const video = h('video', {
      controls: true,
      preload: 'metadata',
      playsinline: true,
      src: vlog.videoUrl,
      poster: vlog.thumbnailUrl,
      'aria-label': `Your vlog: ${vlog.title}`,
    });
    const download = h(
      'a',
      { href: vlog.videoUrl, download: `${vlog.title}.mp4`, class: 'button' },
      'Download the video',
    );
    const share = vlog.shareUrl
      ? h('a', { href: vlog.shareUrl, class: 'button secondary' }, 'Share link')
      : null;
    // The links are signed for MEDIA_URL_TTL_SECONDS (1 h): a page left open longer than that
    // could neither play nor download the video, and said nothing. Fresh links are read when
    // the video fails to load (at most once every 5 s, so a video that fails for another
    // reason is not asked for again and again) and before a download of links 10 s old.
    let linksReadAt = Date.now();
    let lastRead = 0;
    async function freshLinks(): Promise<Vlog | null> {
      lastRead = Date.now();
      const fresh = await api.vlog(vlog.id).catch(() => null);
      if (!fresh?.videoUrl) return null;
      linksReadAt = Date.now();
      download.href = fresh.videoUrl;
      if (share && fresh.shareUrl) share.href = fresh.shareUrl;
      return fresh;
    }
    video.addEventListener('error', () => {
      if (Date.now() - lastRead < 5_000) return;
      const at = video.currentTime;
      void freshLinks().then((fresh) => {
        if (!fresh?.videoUrl) return;
        video.src = fresh.videoUrl;
        video.currentTime = at;
      });
    });
    download.addEventListener('click', (event) => {
      if (Date.now() - linksReadAt < 10_000) return;
      event.preventDefault();
      void freshLinks().then(() => {
        // In the document, where every browser follows a click made by code.
        const fresh = h('a', { href: download.href, download: download.download, hidden: true });
        document.body.append(fresh);
        fresh.click();
        fresh.remove();
      });
    });
    replace(
      result,
      h('h2', { id: 'result-heading' }, 'The video'),
      video,
      h('p', { class: 'actions' }, download, share),
      vlog.durationSeconds ? h('p', { class: 'hint' }, `${vlog.durationSeconds} seconds`) : null,
    );
  }

  function applyEvent(event: JobEventData) {
    if (event.type === 'output') return;
    renderState(event.status as VlogStatus, event.progress, event.phase, event.attempt);
    retry.hidden = true;
    jobError.hidden = !event.error || event.status === 'completed';
    if (event.error) replace(jobError, ...jobErrorText(event.error));
  }

  function follow(attempt: number) {
    const after = following?.position() ?? undefined;
    following?.stop();
    following = followJob<Vlog>({
      link: () => api.vlogStreamLink(id),
      read: () => api.vlog(id),
      ended: (vlog) => ended.has(vlog.status),
      onEvent: applyEvent,
      onView: renderVlog,
      onEnd: (vlog) => {
        renderVlog(vlog);
        transport.textContent = '';
        if (vlog.status === 'completed') context.announce('Your vlog is ready to watch.');
        if (vlog.status === 'failed') {
          context.announce(
            canBeRetried(vlog.status, vlog.attempt)
              ? 'The vlog failed. You can retry it.'
              : 'The vlog failed.',
          );
        }
      },
      onTransport: (next) => (transport.textContent = transportText[next]),
      onWaitingForWorker: workerWait.show,
      onFailure: (error) => failure.show(error),
      pollOnly: context.pollOnly,
      confirmEndMs: context.confirmEndMs,
      attempt,
      ...(after && { after }),
    });
  }

  cancel.addEventListener('click', () => {
    failure.clear();
    cancel.disabled = true;
    api
      .cancelVlog(id)
      .then(() => {
        cancelAccepted = true;
        cancel.hidden = true;
        progressHeading.focus();
        context.announce('Cancelling the vlog…');
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
    failure.clear();
    retry.disabled = true;
    api
      .retryVlog(id, shownAttempt)
      .then(({ attempt }) => {
        cancelAccepted = false;
        retry.hidden = true;
        jobError.hidden = true;
        progressHeading.focus();
        context.announce('Retrying the vlog…');
        follow(attempt);
      })
      .catch((error: unknown) => {
        failure.show(error);
        retry.disabled = false;
        retry.focus();
      })
      .finally(() => (retry.disabled = false));
  });

  const start = (vlog: Vlog) => {
    renderVlog(vlog);
    if (!ended.has(vlog.status)) follow(vlog.attempt);
  };
  const handed = context.handOver.get(`#/vlogs/${id}`) as Vlog | undefined;
  context.handOver.delete(`#/vlogs/${id}`);
  let stopReading = () => undefined as void;
  if (handed) start(handed);
  else {
    stopReading = readUntilAnswered(
      () => api.vlog(id),
      (vlog) => {
        failure.clear();
        start(vlog);
      },
      (error) => failure.show(error),
    );
  }

  const element = h(
    'section',
    { class: 'view vlog' },
    heading,
    failure.element,
    progressSection,
    jobError,
    result,
    h('details', {}, h('summary', {}, 'Uploaded files'), media),
  );
  return {
    element,
    heading,
    dispose: () => {
      stopReading();
      following?.stop();
    },
  };
}
