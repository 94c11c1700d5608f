/** The invitation e-mail, in the language the admin chose for the person (English otherwise). */
const TEXT = {
  en: {
    subject: 'You are invited to Outpost',
    body: (link: string, until: string) =>
      `You have been invited to Outpost, where you get your site's software updates and confirm they are installed.\n\nOpen this link to choose your password and language (it works once, until ${until}):\n\n${link}\n\nIf you did not expect this message, you can ignore it.`,
  },
  fr: {
    subject: 'Vous êtes invité·e sur Outpost',
    body: (link: string, until: string) =>
      `Vous avez été invité·e sur Outpost, où vous recevez les mises à jour du logiciel de votre site et confirmez leur installation.\n\nOuvrez ce lien pour choisir votre mot de passe et votre langue (il ne sert qu'une fois, jusqu'au ${until}) :\n\n${link}\n\nSi vous n'attendiez pas ce message, ignorez-le.`,
  },
  pt: {
    subject: 'Foi convidado(a) para o Outpost',
    body: (link: string, until: string) =>
      `Foi convidado(a) para o Outpost, onde recebe as atualizações do software do seu local e confirma a sua instalação.\n\nAbra esta ligação para escolher a sua palavra-passe e língua (funciona uma vez, até ${until}):\n\n${link}\n\nSe não esperava esta mensagem, pode ignorá-la.`,
  },
} as const;

export function inviteMessage({
  link,
  language,
  expiresAt,
}: {
  link: string;
  language: string | null;
  expiresAt: string;
}) {
  const lang = language === 'fr' || language === 'pt' ? language : 'en';
  const until =
    new Intl.DateTimeFormat(lang, { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' }).format(
      new Date(expiresAt),
    ) + ' UTC';
  return { subject: TEXT[lang].subject, text: TEXT[lang].body(link, until) };
}
