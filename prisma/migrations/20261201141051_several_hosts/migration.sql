-- CreateTable
CREATE TABLE "Blob" (
    "sha256" TEXT NOT NULL,
    "sizeBytes" BIGINT NOT NULL,
    "chunkSize" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Blob_pkey" PRIMARY KEY ("sha256")
);

-- CreateTable
CREATE TABLE "BlobChunk" (
    "sha256" TEXT NOT NULL,
    "index" INTEGER NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "BlobChunk_pkey" PRIMARY KEY ("sha256","index")
);

-- CreateTable
CREATE TABLE "DesiredModel" (
    "modelName" TEXT NOT NULL,
    "loaded" BOOLEAN NOT NULL DEFAULT true,
    "alias" TEXT,
    "versionId" INTEGER,
    "revision" INTEGER NOT NULL DEFAULT 1,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "DesiredModel_pkey" PRIMARY KEY ("modelName")
);

-- CreateTable
CREATE TABLE "TrainingJobRecord" (
    "id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "head" TEXT NOT NULL,
    "task" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "phase" TEXT NOT NULL,
    "progress" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "epoch" INTEGER,
    "loss" DOUBLE PRECISION,
    "validationMetric" DOUBLE PRECISION,
    "metrics" JSONB NOT NULL DEFAULT '[]',
    "error" TEXT,
    "request" JSONB NOT NULL,
    "runner" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "version" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TrainingJobRecord_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "TrainingJobRecord_status_idx" ON "TrainingJobRecord"("status");

-- AddForeignKey
ALTER TABLE "BlobChunk" ADD CONSTRAINT "BlobChunk_sha256_fkey" FOREIGN KEY ("sha256") REFERENCES "Blob"("sha256") ON DELETE CASCADE ON UPDATE CASCADE;
