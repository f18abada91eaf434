-- CreateTable
CREATE TABLE "DatasetExample" (
    "id" SERIAL NOT NULL,
    "datasetId" INTEGER NOT NULL,
    "split" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "label" TEXT,
    "entities" JSONB,

    CONSTRAINT "DatasetExample_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "DatasetExample_datasetId_split_idx" ON "DatasetExample"("datasetId", "split");

-- AddForeignKey
ALTER TABLE "DatasetExample" ADD CONSTRAINT "DatasetExample_datasetId_fkey" FOREIGN KEY ("datasetId") REFERENCES "Dataset"("id") ON DELETE CASCADE ON UPDATE CASCADE;
