-- AlterEnum
ALTER TYPE "HeadInput" ADD VALUE 'GRAPH';

-- AlterTable
ALTER TABLE "Backbone" ADD COLUMN     "architectures" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN     "modelType" TEXT;

-- AlterTable
ALTER TABLE "Head" ADD COLUMN     "sourceLanguage" TEXT,
ADD COLUMN     "targetLanguage" TEXT;
