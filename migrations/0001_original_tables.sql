-- The two tables of the original design (process-monitor-service.md), kept exactly: other
-- systems already write them. IF NOT EXISTS lets this run on a database made by setup.sql.
CREATE TABLE IF NOT EXISTS PROCESE (
    process_id INT PRIMARY KEY,
    process_name VARCHAR(100) NOT NULL
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS STATUS_PROCESS (
    process_id INT PRIMARY KEY,
    alarma TINYINT NOT NULL DEFAULT 0,
    sound TINYINT NOT NULL DEFAULT 0,
    notes VARCHAR(100),
    FOREIGN KEY (process_id) REFERENCES PROCESE(process_id)
) DEFAULT CHARSET = utf8mb4;
