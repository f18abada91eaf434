// A small labelled set for training a topic head in tests: 3 labels x 5 sentences x 8 phrasings.
export const topicLabels = ['sports', 'cooking', 'weather'];

const topics: Record<string, string[]> = {
  sports: ['The striker scored twice in the final', 'Our team won the match after extra time', 'The coach praised the defence', 'She set a new record in the marathon', 'The tennis final went to five sets'],
  cooking: ['Simmer the sauce for ten minutes', 'Add a pinch of salt to the dough', 'Roast the vegetables until golden', 'Whisk the eggs with sugar', 'Serve the soup with fresh bread'],
  weather: ['Heavy rain is expected tomorrow', 'The storm brought strong winds overnight', 'It will be sunny and warm this weekend', 'Snow is falling in the mountains', 'Fog will clear by the afternoon'],
};
const prefixes = ['', 'Today: ', 'News: ', 'I heard that ', 'Apparently ', 'Update: ', 'Breaking: ', 'Note: '];

export const topicExamples = Object.entries(topics).flatMap(([label, sentences]) => prefixes.flatMap((p) => sentences.map((s) => ({ text: `${p}${s}.`, label }))));
