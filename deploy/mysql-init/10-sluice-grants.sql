-- Run once by the mysql image on first start (docker-compose.yml).
-- sluice needs to read the binlog and the tests create their own databases.
CREATE USER IF NOT EXISTS 'sluice'@'%' IDENTIFIED BY 'sluice';
GRANT ALL PRIVILEGES ON *.* TO 'sluice'@'%';
