-- The job store's schema as release 0.1.0 made it (create_all), for sqlite: the starting point
-- of the migration tests. Generated once from that release's app/models.py; never edited.

CREATE TABLE datasets (
	id VARCHAR(32) NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	n_images INTEGER NOT NULL, 
	n_labelled INTEGER NOT NULL, 
	n_classes INTEGER NOT NULL, 
	image_shape JSON NOT NULL, 
	n_test_images INTEGER NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_datasets_created_at ON datasets (created_at);

CREATE TABLE jobs (
	id VARCHAR(32) NOT NULL, 
	name VARCHAR(100), 
	status VARCHAR(16) NOT NULL, 
	dataset VARCHAR(32) NOT NULL, 
	params JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	heartbeat_at DATETIME, 
	claim_token VARCHAR(32), 
	attempts INTEGER NOT NULL, 
	dispatched_at DATETIME, 
	cancel_requested BOOLEAN NOT NULL, 
	model_id VARCHAR(32), 
	error TEXT, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_jobs_created_at ON jobs (created_at);

CREATE INDEX ix_jobs_status ON jobs (status);

CREATE TABLE models (
	id VARCHAR(32) NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	job_id VARCHAR(32), 
	dataset VARCHAR(32) NOT NULL, 
	created_at DATETIME NOT NULL, 
	config JSON NOT NULL, 
	metrics JSON NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_models_created_at ON models (created_at);

CREATE INDEX ix_models_job_id ON models (job_id);

CREATE TABLE job_progress (
	seq INTEGER NOT NULL, 
	job_id VARCHAR(32) NOT NULL, 
	epoch INTEGER NOT NULL, 
	epochs INTEGER NOT NULL, 
	elbo FLOAT NOT NULL, 
	labelled_accuracy FLOAT NOT NULL, 
	test_accuracy FLOAT, 
	examples_per_second FLOAT NOT NULL, 
	eta_seconds FLOAT NOT NULL, 
	learning_rate FLOAT NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (seq), 
	FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE
);

CREATE INDEX ix_job_progress_job_id ON job_progress (job_id);
