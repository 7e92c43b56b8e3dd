module PgQueryHelper; end
