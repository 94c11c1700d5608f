import { oneLine } from './plain-text.ts';

export type ReadmeLanguage = 'en' | 'fr' | 'pt';

export interface DefaultReadmeOptions {
  siteName: string;
  version: string;
  /** Size of the whole bundle download, for the person to check the copy is complete. */
  sizeBytes: number;
  estimatedMinutes: number;
  /** The site's language (default English). */
  language?: ReadmeLanguage;
}

interface Words {
  title(version: string, site: string): string;
  whatThis: string;
  holds(site: string): string;
  size(size: string): string;
  before: string;
  tell: string;
  plan(minutes: number): string;
  what: string;
  steps: string[];
  command: string;
  after: string[];
  wrong: string;
  wrongText: string[];
  more: string;
  moreText: string[];
}

const WORDS: Record<ReadmeLanguage, Words> = {
  en: {
    title: (v, s) => `Update to version ${v} for ${s}`,
    whatThis: 'WHAT THIS IS',
    holds: (s) => `This folder holds an update for the system at ${s}.`,
    size: (z) => `All of it together is ${z}. Do not change, rename or delete anything in it.`,
    before: 'BEFORE YOU START',
    tell: '1. Tell the people using the system that it will be stopped for a while.',
    plan: (m) =>
      `2. Plan for about ${m} minute${m === 1 ? '' : 's'}. Keep the server switched on and plugged in the whole time.`,
    what: 'WHAT TO DO',
    steps: [
      '1. Copy this whole folder onto the server (or plug in the USB drive that holds it).',
      '2. Open a terminal on the server and go into this folder.',
      '3. Type this and press Enter:',
    ],
    command: '       sudo sh scripts/install',
    after: [
      '4. Wait. The screen tells you each step as it happens. Do not close it.',
      '5. At the end it shows a short receipt code. Write it down, or type it into the',
      '   update page on your phone, so the coordinator knows the update is done.',
    ],
    wrong: 'IF SOMETHING GOES WRONG',
    wrongText: [
      'Nothing is lost. If the update cannot finish, it puts the previous version and its',
      'data back by itself. Wait until it says it has finished, then call your coordinator',
      'and read out what the screen says (or take a photo of it).',
      'Do not try to fix it yourself and do not switch the server off while it is working.',
      'If the power went off during the update, run the same command again: it carries on',
      'where it stopped, or puts the previous version back.',
    ],
    more: 'OTHER COMMANDS (for the coordinator)',
    moreText: [
      '   sudo sh scripts/status       what is installed, the last check and the last backup',
      '   sudo sh scripts/self-check   check that the system is working',
      '   sudo sh scripts/rollback     go back to the version installed before',
    ],
  },
  fr: {
    title: (v, s) => `Mise à jour vers la version ${v} pour ${s}`,
    whatThis: 'DE QUOI IL S’AGIT',
    holds: (s) => `Ce dossier contient une mise à jour du système de ${s}.`,
    size: (z) => `L’ensemble fait ${z}. Ne modifiez, ne renommez et ne supprimez rien dedans.`,
    before: 'AVANT DE COMMENCER',
    tell: '1. Prévenez les personnes qui utilisent le système qu’il sera arrêté un moment.',
    plan: (m) =>
      `2. Prévoyez environ ${m} minute${m === 1 ? '' : 's'}. Laissez le serveur allumé et branché tout ce temps.`,
    what: 'CE QU’IL FAUT FAIRE',
    steps: [
      '1. Copiez tout ce dossier sur le serveur (ou branchez la clé USB qui le contient).',
      '2. Ouvrez un terminal sur le serveur et allez dans ce dossier.',
      '3. Tapez ceci puis appuyez sur Entrée :',
    ],
    command: '       sudo sh scripts/install',
    after: [
      '4. Attendez. L’écran indique chaque étape au moment où elle se fait. Ne le fermez pas.',
      '5. À la fin, il affiche un court code de reçu. Notez-le, ou tapez-le dans la page',
      '   de mise à jour sur votre téléphone, pour que le coordinateur sache que c’est fait.',
    ],
    wrong: 'SI QUELQUE CHOSE NE VA PAS',
    wrongText: [
      'Rien n’est perdu. Si la mise à jour ne peut pas se terminer, elle remet d’elle-même',
      'la version précédente et ses données. Attendez qu’elle dise qu’elle a fini, puis',
      'appelez votre coordinateur et lisez-lui ce qui est écrit à l’écran (ou prenez-le en photo).',
      'N’essayez pas de réparer vous-même et n’éteignez pas le serveur pendant qu’il travaille.',
      'Si le courant a été coupé pendant la mise à jour, relancez la même commande : elle',
      'reprend là où elle s’est arrêtée, ou remet la version précédente.',
    ],
    more: 'AUTRES COMMANDES (pour le coordinateur)',
    moreText: [
      '   sudo sh scripts/status       ce qui est installé, la dernière vérification, la dernière sauvegarde',
      '   sudo sh scripts/self-check   vérifier que le système fonctionne',
      '   sudo sh scripts/rollback     revenir à la version installée avant',
    ],
  },
  pt: {
    title: (v, s) => `Atualização para a versão ${v} para ${s}`,
    whatThis: 'O QUE É ISTO',
    holds: (s) => `Esta pasta contém uma atualização do sistema de ${s}.`,
    size: (z) => `No total são ${z}. Não altere, não mude o nome nem apague nada aqui dentro.`,
    before: 'ANTES DE COMEÇAR',
    tell: '1. Avise as pessoas que usam o sistema que ele vai ficar parado durante algum tempo.',
    plan: (m) =>
      `2. Conte com cerca de ${m} minuto${m === 1 ? '' : 's'}. Mantenha o servidor ligado e na tomada o tempo todo.`,
    what: 'O QUE FAZER',
    steps: [
      '1. Copie esta pasta inteira para o servidor (ou ligue a pen USB que a contém).',
      '2. Abra um terminal no servidor e entre nesta pasta.',
      '3. Escreva isto e carregue em Enter:',
    ],
    command: '       sudo sh scripts/install',
    after: [
      '4. Espere. O ecrã mostra cada passo à medida que acontece. Não o feche.',
      '5. No fim aparece um código de recibo curto. Anote-o, ou escreva-o na página de',
      '   atualização no seu telemóvel, para o coordenador saber que a atualização terminou.',
    ],
    wrong: 'SE ALGUMA COISA CORRER MAL',
    wrongText: [
      'Nada se perde. Se a atualização não puder terminar, ela repõe sozinha a versão',
      'anterior e os seus dados. Espere até dizer que terminou, depois ligue ao seu',
      'coordenador e leia o que está no ecrã (ou tire-lhe uma fotografia).',
      'Não tente resolver sozinho e não desligue o servidor enquanto ele trabalha.',
      'Se a luz faltou durante a atualização, volte a escrever o mesmo comando: ela',
      'continua onde parou, ou repõe a versão anterior.',
    ],
    more: 'OUTROS COMANDOS (para o coordenador)',
    moreText: [
      '   sudo sh scripts/status       o que está instalado, a última verificação e a última cópia',
      '   sudo sh scripts/self-check   verificar se o sistema funciona',
      '   sudo sh scripts/rollback     voltar à versão instalada antes',
    ],
  },
};

/**
 * A README.txt in plain words for someone with no IT background, in the site's language: what this
 * is, what to do, how long it takes, and what to do when it fails (call the coordinator; the update
 * undoes itself).
 *
 * @example
 * defaultReadme({ siteName: 'Kisumu North Clinic', version: '2.4.0', sizeBytes: 1_200_000_000, estimatedMinutes: 20, language: 'fr' });
 */
export function defaultReadme(input: DefaultReadmeOptions): string {
  // The site's name is someone's words: one plain line, whatever it holds.
  const options = { ...input, siteName: oneLine(input.siteName), version: oneLine(input.version) };
  const minutes = Math.max(1, Math.round(options.estimatedMinutes));
  const language = options.language ?? 'en';
  const w = WORDS[language];
  return [
    w.title(options.version, options.siteName),
    '',
    w.whatThis,
    w.holds(options.siteName),
    w.size(formatSize(options.sizeBytes, language)),
    '',
    w.before,
    w.tell,
    w.plan(minutes),
    '',
    w.what,
    ...w.steps,
    '',
    w.command,
    '',
    ...w.after,
    '',
    w.wrong,
    ...w.wrongText,
    '',
    w.more,
    ...w.moreText,
    '',
  ].join('\n');
}

function formatSize(bytes: number, language: ReadmeLanguage): string {
  const units = language === 'fr' ? ['Go', 'Mo', 'Ko'] : ['GB', 'MB', 'KB'];
  const decimal = (n: number) => (language === 'en' ? n.toFixed(1) : n.toFixed(1).replace('.', ','));
  if (bytes >= 1e9) return `${decimal(bytes / 1e9)} ${units[0]}`;
  if (bytes >= 1e6) return `${Math.round(bytes / 1e6)} ${units[1]}`;
  return `${Math.max(1, Math.round(bytes / 1e3))} ${units[2]}`;
}
