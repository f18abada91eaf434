// POST /review: what the app needs about a batch of customer reviews, from one multi-task Polyhead request.
import { ReviewAnalysisDocument } from './documents.js';
import type { ReviewAnalysisQuery } from './gql/graphql.js';
import type { PolyheadRequest } from './polyhead-client.js';

export interface ReviewSummary {
  text: string;
  sentiment: string;
  confidence: number;
  /** People, organisations and places named in the review, with their character offsets. */
  entities: Array<{ text: string; label: string; start: number; end: number }>;
  /** The other review in the batch that reads most alike (cosine of the sentence embeddings), if any. */
  mostSimilar: { index: number; cosine: number } | null;
  truncated: boolean;
}

export async function summarizeReviews(polyhead: PolyheadRequest, texts: string[]): Promise<ReviewSummary[]> {
  const { analyze } = await polyhead(ReviewAnalysisDocument, { texts });
  return analyze.map((review, index) => ({
    text: review.text,
    sentiment: review.sentiment.label,
    confidence: review.sentiment.score,
    entities: review.entities,
    mostSimilar: mostSimilarTo(index, analyze),
    truncated: review.truncated,
  }));
}

// Polyhead's embeddings are unit length (normalize defaults to true), so the cosine is the dot product.
function mostSimilarTo(index: number, reviews: ReviewAnalysisQuery['analyze']): ReviewSummary['mostSimilar'] {
  let best: ReviewSummary['mostSimilar'] = null;
  const own = reviews[index]!.embedding;
  reviews.forEach((other, otherIndex) => {
    if (otherIndex === index) return;
    const cosine = own.reduce((sum, value, i) => sum + value * other.embedding[i]!, 0);
    if (!best || cosine > best.cosine) best = { index: otherIndex, cosine };
  });
  return best;
}
