import {
  newIdempotencyKey,
  readUntilAnswered,
  type ApiFailure,
  type UploadLimits,
  type Vlog,
} from '../api.js';
import type { PageContext, View } from '../context.js';
import { field, formatBytes, formatDuration, h, replace } from '../dom.js';
import {
  acceptAttribute,
  checkFile,
  checkMeasured,
  checkSelection,
  kindOf,
  type FileProblem,
} from '../file-checks.js';
import { measureMedia } from '../measure-media.js';
import { failureBox } from './failure.js';

/**
 * Make a vlog: the form, the files (dropped or picked, each checked with the API's rules and
 * words before anything is sent), the upload with its progress, then the vlog's own view.
 */
export function makeVlogView(context: PageContext): View {
  const { api } = context;
  const heading = h('h1', { tabindex: -1 }, 'Make a vlog');
  const failure = failureBox();
  let rules: UploadLimits | null = null;
  let files: File[] = [];
  // What measuring each file in the browser found: a problem, null (within the limits), or
  // nothing yet.
  const measured = new WeakMap<File, FileProblem | null>();
  // What the API refused a file for once it read its bytes (a .jpg that is not a JPEG).
  const refusedByApi = new WeakMap<File, Pick<FileProblem, 'message'>>();
  const problemOf = (file: File) =>
    checkFile(file, rules!) ?? measured.get(file) ?? refusedByApi.get(file) ?? null;
  let upload: { abort: () => void } | null = null;
  // One key per set of files and fields: sending the same vlog again after a network error
  // cannot make two.
  let idempotencyKey = newIdempotencyKey();
  const newRequest = () => (idempotencyKey = newIdempotencyKey());

  const title = h('input', {
    name: 'title',
    type: 'text',
    required: true,
    maxlength: 200,
    autocomplete: 'off',
  });
  const prompt = h('textarea', { name: 'prompt', rows: 3, maxlength: 2000 });
  const style = h('input', { name: 'style', type: 'text', maxlength: 200, autocomplete: 'off' });
  const aspectRatio = h(
    'select',
    { name: 'aspectRatio' },
    h('option', { value: '16:9' }, 'Landscape (16:9)'),
    h('option', { value: '9:16' }, 'Portrait (9:16)'),
  );
  const duration = h(
    'select',
    { name: 'durationSeconds' },
    h('option', { value: '4' }, '4 seconds'),
    h('option', { value: '6' }, '6 seconds'),
    h('option', { value: '8', selected: true }, '8 seconds'),
  );
  const picker = h('input', { type: 'file', name: 'media', multiple: true, id: 'media-files' });
  const limitsHint = h(
    'p',
    { class: 'hint', id: 'media-files-hint' },
    'Checking what you can upload…',
  );
  picker.setAttribute('aria-describedby', limitsHint.id);
  const selectionProblem = h('p', { class: 'problem', id: 'selection-problem', hidden: true });
  const fileList = h('ul', { class: 'files', 'aria-label': 'Chosen files' });
  const dropZone = h(
    'div',
    { class: 'drop-zone' },
    h('label', { for: picker.id }, 'Photos and clips'),
    h('p', { 'aria-hidden': 'true' }, 'Drag them here, or choose them:'),
    picker,
    limitsHint,
  );
  const submit = h('button', { type: 'submit' }, 'Make the vlog');

  const uploadProgress = h('progress', { max: 100, value: 0, id: 'upload-progress' });
  const uploadText = h('p', { id: 'upload-status', 'aria-live': 'polite', tabindex: '-1' });
  const cancelUpload = h('button', { type: 'button', class: 'secondary' }, 'Cancel upload');
  const uploadPanel = h(
    'section',
    { class: 'upload', hidden: true, 'aria-labelledby': 'upload-heading' },
    h('h2', { id: 'upload-heading' }, 'Uploading'),
    h('label', { for: uploadProgress.id }, 'Upload progress'),
    uploadProgress,
    uploadText,
    cancelUpload,
  );

  function renderFiles(announce = true) {
    const problems = rules ? files.map(problemOf) : [];
    replace(
      fileList,
      ...files.map((file, index) => {
        const problem = problems[index] ?? null;
        return h(
          'li',
          { class: problem ? 'file refused' : 'file' },
          h('span', { class: 'name' }, file.name),
          h('span', { class: 'size' }, formatBytes(file.size)),
          h(
            'span',
            { class: problem ? 'check problem' : 'check ok' },
            problem
              ? problem.message
              : rules && !measured.has(file)
                ? 'Checking…'
                : 'Ready to upload',
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'link',
              'aria-label': `Remove ${file.name}`,
              on: {
                click: () => {
                  files = files.filter((_, at) => at !== index);
                  newRequest();
                  renderFiles();
                  picker.focus();
                },
              },
            },
            'Remove',
          ),
        );
      }),
    );
    fileList.hidden = files.length === 0;
    const selection = rules && files.length > 0 ? checkSelection(files, rules) : null;
    selectionProblem.hidden = !selection;
    selectionProblem.textContent = selection?.message ?? '';
    const refused = problems.filter(Boolean).length;
    if (announce && files.length > 0) {
      context.announce(
        `${files.length} file${files.length === 1 ? '' : 's'} chosen${refused ? `, ${refused} cannot be uploaded` : ''}${selection ? `. ${selection.message}` : ''}`,
      );
    }
  }

  /** Measures the files not measured yet, each then shown with what it found. */
  function measureFiles() {
    for (const file of files) {
      const kind = rules && !checkFile(file, rules) ? kindOf(file, rules) : undefined;
      if (!kind || measured.has(file)) continue;
      void measureMedia(file, kind).then((size) => {
        measured.set(file, size && checkMeasured(file, size, rules!));
        if (files.includes(file)) renderFiles(false);
      });
    }
  }

  function addFiles(added: FileList | null) {
    if (!added || added.length === 0) return;
    files = [...files, ...Array.from(added)];
    newRequest();
    failure.clear();
    renderFiles();
    measureFiles();
  }

  picker.addEventListener('change', () => {
    addFiles(picker.files);
    picker.value = '';
  });
  for (const type of ['dragenter', 'dragover'] as const) {
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add('dragging');
    });
  }
  dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
  dropZone.addEventListener('drop', (event) => {
    event.preventDefault();
    dropZone.classList.remove('dragging');
    addFiles(event.dataTransfer?.files ?? null);
  });
  for (const control of [title, prompt, style, aspectRatio, duration]) {
    control.addEventListener('change', newRequest);
  }

  const form = h(
    'form',
    { novalidate: true, 'aria-labelledby': 'make-heading' },
    field('Title', title),
    field(
      'What it is about (optional)',
      prompt,
      'A few words on the story, the mood, what to show.',
    ),
    field('Style (optional)', style, 'For example: warm, cinematic, handheld.'),
    h('div', { class: 'row' }, field('Shape', aspectRatio), field('Length', duration)),
    dropZone,
    selectionProblem,
    fileList,
    failure.element,
    submit,
  );
  heading.id = 'make-heading';

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    failure.clear();
    if (!title.value.trim()) {
      failure.say('Give the vlog a title.');
      title.focus();
      return;
    }
    if (!rules) {
      failure.say(
        'The page is still finding out what you can upload from the service. Try again in a moment.',
      );
      return;
    }
    const selection = checkSelection(files, rules);
    const refused = files.filter(problemOf);
    if (selection || refused.length > 0) {
      selectionProblem.hidden = false;
      selectionProblem.textContent =
        selection?.message ??
        `Remove the file${refused.length === 1 ? '' : 's'} that cannot be uploaded first.`;
      selectionProblem.setAttribute('role', 'alert');
      picker.focus();
      return;
    }
    const body = new FormData();
    body.set('title', title.value.trim());
    if (prompt.value.trim()) body.set('prompt', prompt.value.trim());
    if (style.value.trim()) body.set('style', style.value.trim());
    body.set('aspectRatio', aspectRatio.value);
    body.set('durationSeconds', duration.value);
    for (const file of files) body.append('media', file, file.name);
    startUpload(body);
  });

  function startUpload(body: FormData) {
    submit.disabled = true;
    uploadPanel.hidden = false;
    cancelUpload.hidden = false;
    uploadProgress.value = 0;
    uploadText.textContent = 'Starting the upload…';
    let lastAnnounced = -1;
    const sending = api.createVlog(
      body,
      (sent, total) => {
        const percent = Math.floor((sent / total) * 100);
        uploadProgress.value = percent;
        uploadText.textContent =
          sent < total
            ? `Uploaded ${formatBytes(sent)} of ${formatBytes(total)} (${percent}%)`
            : 'Uploaded; the service is checking the files. Once the vlog is made, you can cancel it.';
        // Once every byte is sent, the service may make the vlog whatever the page does: an
        // abort here would say the upload stopped while the vlog is made all the same.
        if (sent >= total && cancelUpload.hidden === false) {
          if (document.activeElement === cancelUpload) uploadText.focus();
          cancelUpload.hidden = true;
        }
        // Screen readers hear every quarter, not every percent.
        if (Math.floor(percent / 25) !== lastAnnounced) {
          lastAnnounced = Math.floor(percent / 25);
          context.announce(`Upload ${percent}%`);
        }
      },
      idempotencyKey,
    );
    upload = sending;
    sending.done
      .then((vlog: Vlog) => {
        upload = null;
        context.handOver.set(`#/vlogs/${vlog.id}`, vlog);
        context.announce('Upload complete. Your vlog is being made.');
        context.navigate(`#/vlogs/${encodeURIComponent(vlog.id)}`);
      })
      .catch((error: ApiFailure) => {
        upload = null;
        uploadPanel.hidden = true;
        submit.disabled = false;
        // The page asks the person to sign in again, and shows this form as it was after.
        if (error.status === 401) {
          failure.say('The vlog was not sent: you were signed out. Make it again now.');
        } else {
          failure.show(error);
        }
        // The file it names is marked in the list, so the person sees which one to remove.
        const refused = files.find((file) => file.name === error.file);
        if (refused) {
          refusedByApi.set(refused, { message: error.detail });
          renderFiles(false);
        }
        if (error.code !== 'NETWORK_ERROR' && error.code !== 'CANCELLED') newRequest();
        submit.focus();
      });
  }
  cancelUpload.addEventListener('click', () => upload?.abort());

  const stopLimits = readUntilAnswered(
    () => api.uploadLimits(),
    (limits) => {
      rules = limits;
      failure.clear();
      picker.accept = acceptAttribute(limits);
      measureFiles();
      limitsHint.textContent = `Up to ${limits.maxFiles} photos or clips, ${formatBytes(limits.maxFileBytes)} each; clips up to ${formatDuration(limits.maxVideoSeconds)}.`;
      renderFiles();
    },
    (error) => failure.show(error),
  );

  const element = h('section', { class: 'view make' }, heading, form, uploadPanel);
  return {
    element,
    heading,
    dispose: () => {
      upload?.abort();
      stopLimits();
    },
    holdsInput: () =>
      rules !== null &&
      (files.length > 0 || [title, prompt, style].some((input) => input.value.trim() !== '')),
  };
}
